//! An open asset store: whole files in and out, folders listed and deleted, and
//! presigned reads for the VOD origin (S3 only: the file store is read by nginx
//! from its folder).

use std::{
    path::{Path as FsPath, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::{StreamExt, TryStreamExt};
use object_store::{
    ObjectStore, ObjectStoreExt,
    aws::{AmazonS3, AmazonS3Builder},
    buffered::BufWriter,
    local::LocalFileSystem,
    path::Path,
    signer::Signer,
};
use tokio::io::AsyncWriteExt;

use crate::config::StoreArgs;

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A variable is unusable; the text names it and never holds a secret.
    #[error("{0}")]
    Config(String),
    /// The store failed.
    #[error("asset store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file could not be read or written.
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the store keeps its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder on this machine (`file:///…`).
    File(PathBuf),
    /// An S3 bucket (`s3://…`) at an endpoint.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Endpoint URL; `None` for AWS.
        endpoint: Option<String>,
    },
}

/// An open asset store; cheap to clone.
#[derive(Debug, Clone)]
pub struct AssetStore {
    /// The objects.
    inner: Arc<dyn ObjectStore>,
    /// The same store when it is S3, for presigning.
    s3: Option<Arc<AmazonS3>>,
    /// Where it is.
    location: Location,
}

impl AssetStore {
    /// Opens the store the arguments name; `Ok(None)` when none is configured. A
    /// `file://` folder is created when missing.
    pub fn open(args: &StoreArgs) -> Result<Option<Self>, StoreError> {
        let Some(url) = args.asset_store.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let bad = |why: &str| StoreError::Config(format!("NOVA_ASSET_STORE: {why}"));
        let parsed =
            url::Url::parse(url).map_err(|_| bad("not a URL (file:///folder or s3://bucket)"))?;
        match parsed.scheme() {
            "file" => {
                if parsed.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(bad("a file:// URL names no host: file:///absolute/folder"));
                }
                let root = parsed
                    .to_file_path()
                    .map_err(|()| bad("not an absolute folder"))?;
                std::fs::create_dir_all(&root)
                    .map_err(|e| bad(&format!("cannot create {}: {e}", root.display())))?;
                let local = LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| bad(&e.to_string()))?
                    .with_automatic_cleanup(true);
                Ok(Some(Self {
                    inner: Arc::new(local),
                    s3: None,
                    location: Location::File(root),
                }))
            }
            "s3" => {
                let bucket = parsed
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| bad("s3://bucket names no bucket"))?
                    .to_owned();
                if !matches!(parsed.path(), "" | "/") {
                    return Err(bad("s3://bucket takes no path"));
                }
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_region(&args.asset_s3_region)
                    .with_virtual_hosted_style_request(false);
                if let Some(endpoint) = args.asset_s3_endpoint.as_deref().filter(|e| !e.is_empty())
                {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let Some(id) = &args.asset_s3_access_key_id {
                    builder = builder.with_access_key_id(id.expose());
                }
                if let Some(secret) = &args.asset_s3_secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                let s3 = Arc::new(builder.build().map_err(|e| {
                    StoreError::Config(format!(
                        "NOVA_ASSET_STORE / NOVA_ASSET_S3_*: cannot open the bucket: {e}"
                    ))
                })?);
                Ok(Some(Self {
                    inner: s3.clone(),
                    s3: Some(s3),
                    location: Location::S3 {
                        bucket,
                        endpoint: args.asset_s3_endpoint.clone().filter(|e| !e.is_empty()),
                    },
                }))
            }
            _ => Err(bad("must be file:///folder or s3://bucket")),
        }
    }

    /// Returns where the store is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Describes the store for logs: its URL, never a credential.
    pub fn describe(&self) -> String {
        match &self.location {
            Location::File(root) => format!("file://{}", root.display()),
            Location::S3 { bucket, endpoint } => match endpoint {
                Some(endpoint) => format!("s3://{bucket} at {endpoint}"),
                None => format!("s3://{bucket}"),
            },
        }
    }

    /// Copies local file `from` into object `to`; returns its size. Large files go up
    /// in parts; the object appears whole or not at all.
    pub async fn upload_file(&self, from: &FsPath, to: &Path) -> Result<u64, StoreError> {
        let mut file = tokio::fs::File::open(from).await?;
        let mut writer = BufWriter::new(self.inner.clone(), to.clone());
        let copied = match tokio::io::copy(&mut file, &mut writer).await {
            Ok(n) => n,
            Err(err) => {
                let _ = writer.abort().await;
                return Err(err.into());
            }
        };
        writer.shutdown().await?;
        Ok(copied)
    }

    /// Stores `bytes` as object `to`.
    pub async fn put(&self, to: &Path, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.inner.put(to, bytes.into()).await?;
        Ok(())
    }

    /// Copies object `from` into local file `to` (created or truncated); returns its
    /// size.
    pub async fn download_file(&self, from: &Path, to: &FsPath) -> Result<u64, StoreError> {
        let mut stream = self.inner.get(from).await?.into_stream();
        let mut file = tokio::fs::File::create(to).await?;
        let mut size = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            file.write_all(&chunk).await?;
            size += chunk.len() as u64;
        }
        file.flush().await?;
        Ok(size)
    }

    /// Returns the content of object `key`.
    pub async fn read(&self, key: &Path) -> Result<Vec<u8>, StoreError> {
        Ok(self.inner.get(key).await?.bytes().await?.to_vec())
    }

    /// Deletes object `key`; a missing object is not an error.
    pub async fn delete(&self, key: &Path) -> Result<(), StoreError> {
        match self.inner.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Returns the objects under folder `prefix` with their sizes.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<(Path, u64)>, StoreError> {
        Ok(self
            .inner
            .list(Some(prefix))
            .map_ok(|meta| (meta.location, meta.size))
            .try_collect()
            .await?)
    }

    /// Deletes every object under folder `prefix`; returns how many there were.
    pub async fn delete_prefix(&self, prefix: &Path) -> Result<usize, StoreError> {
        let listed = self.list(prefix).await?;
        let count = listed.len();
        let keys = futures::stream::iter(listed.into_iter().map(|(key, _)| Ok(key))).boxed();
        self.inner
            .delete_stream(keys)
            .try_for_each(|_| async { Ok(()) })
            .await
            .or_else(|err| match err {
                object_store::Error::NotFound { .. } => Ok(()),
                err => Err(err),
            })?;
        Ok(count)
    }

    /// Returns the path and query of a presigned GET of object `key`, valid for
    /// `ttl`, for the VOD origin to fetch it from the S3 endpoint; `None` for a file
    /// store (the origin reads its folder).
    pub async fn presign_get(
        &self,
        key: &Path,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        let Some(s3) = &self.s3 else {
            return Ok(None);
        };
        let url = s3.signed_url(http::Method::GET, key, ttl).await?;
        Ok(Some(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn a_file_store_moves_files_in_and_out_and_deletes_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = AssetStore::open(&StoreArgs::at(format!("file://{}", root.display())))
            .unwrap()
            .unwrap();
        let local = dir.path().join("in.bin");
        std::fs::write(&local, vec![7u8; 100_000]).unwrap();
        let key = Path::from("assets/a/b/0.ts");
        assert_eq!(store.upload_file(&local, &key).await.unwrap(), 100_000);
        assert!(root.join("assets/a/b/0.ts").exists());
        store
            .put(&Path::from("assets/a/b/index.m3u8"), b"#EXTM3U\n".to_vec())
            .await
            .unwrap();
        let back = dir.path().join("out.bin");
        assert_eq!(store.download_file(&key, &back).await.unwrap(), 100_000);
        assert_eq!(std::fs::read(&back).unwrap(), vec![7u8; 100_000]);
        assert_eq!(store.list(&Path::from("assets/a")).await.unwrap().len(), 2);
        assert_eq!(
            store
                .presign_get(&key, Duration::from_secs(60))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store.delete_prefix(&Path::from("assets/a")).await.unwrap(),
            2
        );
        assert!(store.list(&Path::from("assets")).await.unwrap().is_empty());
        store.delete(&key).await.unwrap();
    }

    #[test]
    fn bad_urls_name_the_variable() {
        for bad in [
            "nope",
            "ftp://x",
            "s3://",
            "s3://bucket/path",
            "file://host/x",
        ] {
            let err = AssetStore::open(&StoreArgs::at(bad)).unwrap_err();
            assert!(
                err.to_string().starts_with("NOVA_ASSET_STORE"),
                "{bad}: {err}"
            );
        }
        assert!(AssetStore::open(&StoreArgs::default()).unwrap().is_none());
    }
}
