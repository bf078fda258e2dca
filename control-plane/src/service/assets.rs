//! Asset rules: listing a stream's assets and reading one, for the stream's owner
//! (or an admin acting for nobody), and deleting one with its files on behalf of its
//! owner, audited in the same transaction.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use diesel_async::AsyncConnection as _;
use nova_store::{AssetStore, keys};
use uuid::Uuid;

use crate::{
    auth::{Actor, Principal},
    db::{DbPool, assets, garbage, streams},
    error::{Error, Result},
    service::{
        asset::Asset,
        audit::{self, AuditAction, Change},
        garbage as store_garbage,
        streams::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
    },
};

/// One page of a stream's assets.
#[derive(Debug)]
pub struct AssetPage {
    /// The assets, newest first.
    pub assets: Vec<Asset>,
    /// Token of the next page; empty on the last page.
    pub next_page_token: String,
}

/// Asset operations over PostgreSQL and the asset store.
#[derive(Clone)]
pub struct Assets {
    /// Connection pool.
    pool: DbPool,
    /// Where the files are; `None` when recording is off (files of assets made
    /// earlier stay marked for deletion until a store is configured).
    store: Option<AssetStore>,
    /// Base URL of the VOD origin (`…/vod`).
    vod_url: String,
}

impl Assets {
    /// Builds the service.
    pub fn new(pool: DbPool, store: Option<AssetStore>, vod_url: String) -> Self {
        Self {
            pool,
            store,
            vod_url,
        }
    }

    /// Returns whether recording is possible here (an asset store is configured).
    pub fn recording_enabled(&self) -> bool {
        self.store.is_some()
    }

    /// Returns one page of stream `stream_id`'s assets, newest first. A caller acting
    /// for `viewer` must own the stream; `None` (an admin acting for nobody) sees all.
    pub async fn list(
        &self,
        viewer: Option<&Principal>,
        stream_id: Uuid,
        page_size: i32,
        page_token: &str,
    ) -> Result<AssetPage> {
        let limit = match i64::from(page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(Error::invalid(
                    "page_size",
                    format!("must be between 0 and {MAX_PAGE_SIZE}"),
                ));
            }
        };
        let before = match page_token {
            "" => None,
            token => Some(decode_token(token, stream_id)?),
        };
        let mut conn = self.pool.get().await?;
        let stream = streams::find(&mut conn, stream_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("streams/{stream_id}")))?;
        if viewer.is_some_and(|v| v.as_str() != stream.owner) {
            return Err(Error::PermissionDenied(
                "only the owner of a stream may list its assets",
            ));
        }
        let mut rows = assets::list_for_stream(&mut conn, stream_id, before, limit + 1).await?;
        let next_page_token = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last()
                .map(|(last, _, _)| encode_token(last.id, stream_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(AssetPage {
            assets: rows
                .into_iter()
                .map(|(row, owner, policy)| Asset::from_row(row, owner, &policy, &self.vod_url))
                .collect(),
            next_page_token,
        })
    }

    /// Returns one asset; a caller acting for `viewer` must own its stream.
    pub async fn get(&self, viewer: Option<&Principal>, id: Uuid) -> Result<Asset> {
        let mut conn = self.pool.get().await?;
        let (row, owner, policy) = assets::find(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if viewer.is_some_and(|v| v.as_str() != owner) {
            return Err(Error::PermissionDenied(
                "only the owner of a stream may read its assets",
            ));
        }
        Ok(Asset::from_row(row, owner, &policy, &self.vod_url))
    }

    /// Deletes an asset on behalf of its owner: the row (its pieces and remux job
    /// with it) and an audit record in one transaction, which also marks every file
    /// of the asset as store garbage; the files are then deleted at once (what fails
    /// is retried by the worker's sweep).
    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let marked = conn
            .transaction(async |conn| {
                let row = assets::find_for_update(conn, id)
                    .await?
                    .ok_or_else(|| not_found(id))?;
                let stream = streams::find(conn, row.stream_id)
                    .await?
                    .ok_or_else(|| not_found(id))?;
                if stream.owner != actor.principal.as_str() {
                    return Err(Error::PermissionDenied(
                        "only the owner of a stream may delete its assets",
                    ));
                }
                let mut marked = assets::take_pieces(conn, id).await?;
                marked.push(keys::asset_root(id).to_string());
                garbage::add(conn, &marked).await?;
                assets::delete(conn, id).await?;
                let resource = format!("assets/{id}");
                let change = Change {
                    action: AuditAction::AssetDeleted,
                    stream_id: Some(row.stream_id),
                    resource: &resource,
                    owner: &stream.owner,
                    fields: &[],
                };
                audit::record(conn, actor, &change).await?;
                Ok::<_, Error>(marked)
            })
            .await?;
        tracing::info!(asset.id = %id, "asset deleted");
        if let Some(store) = &self.store {
            store_garbage::delete_now(&self.pool, store, &marked).await;
        }
        Ok(())
    }
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound(format!("assets/{id}"))
}

/// A page token: the last asset id of the page and the stream it lists.
fn encode_token(last: Uuid, stream: Uuid) -> String {
    let mut raw = Vec::with_capacity(32);
    raw.extend_from_slice(last.as_bytes());
    raw.extend_from_slice(stream.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(token: &str, stream: Uuid) -> Result<Uuid> {
    let invalid = || Error::invalid("page_token", "not a token returned by ListAssets");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if raw.len() != 32 {
        return Err(invalid());
    }
    if raw[16..] != *stream.as_bytes() {
        return Err(Error::invalid(
            "page_token",
            "was issued for another stream; list the same stream",
        ));
    }
    Uuid::from_slice(&raw[..16]).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_belong_to_their_stream() {
        let (last, stream) = (Uuid::now_v7(), Uuid::now_v7());
        let token = encode_token(last, stream);
        assert_eq!(decode_token(&token, stream).unwrap(), last);
        assert!(decode_token(&token, Uuid::now_v7()).is_err());
        assert!(decode_token("garbage!", stream).is_err());
    }
}
