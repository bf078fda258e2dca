//! The grammar of media URLs the origin serves, as the verifier reads nginx's raw
//! `$request_uri`: `/<app>/<file>` (plain) or `/<app>/t/<token>/<file>` (signed),
//! where `<app>` is `hls`, `dash` or `abr` and `<file>` one of the names nginx-rtmp
//! writes for a stream id, or `vod` and `<file>` `<asset id>/<name>` with `<name>`
//! one of an asset's files (`index.m3u8`, `<n>.ts`, `download.mp4`). Anything else
//! (dot segments, doubled or encoded slashes, `%` escapes, other names) does not
//! parse, so what the verifier approves is exactly what nginx serves after
//! normalising the path.

use nova_store::VodFile;
use uuid::Uuid;

/// Longest token accepted, bytes.
pub const MAX_TOKEN: usize = 2048;

/// What a media request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// A live file of a stream (`hls`, `dash`, `abr`).
    Live(Uuid),
    /// A file of an on-demand asset (`vod`).
    Vod {
        /// The asset.
        asset: Uuid,
        /// Which of its files.
        file: VodFile,
    },
}

/// A media request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPath<'a> {
    /// What is asked for.
    pub media: Media,
    /// The token path component, if any (at most [`MAX_TOKEN`] bytes, three
    /// base64url parts joined by dots).
    pub token: Option<&'a str>,
}

/// Why a path was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not a media path of the grammar.
    Malformed,
    /// The token component is longer than [`MAX_TOKEN`].
    Oversized,
}

/// Parses a raw request URI (the query string is ignored).
pub fn parse(raw: &str) -> Result<MediaPath<'_>, PathError> {
    let path = raw.split_once('?').map_or(raw, |(p, _)| p);
    let rest = path.strip_prefix('/').ok_or(PathError::Malformed)?;
    let (app, rest) = rest.split_once('/').ok_or(PathError::Malformed)?;
    if !matches!(app, "hls" | "dash" | "abr" | "vod") {
        return Err(PathError::Malformed);
    }
    let (token, file) = match rest.strip_prefix("t/") {
        Some(signed) => {
            let (token, file) = signed.split_once('/').ok_or(PathError::Malformed)?;
            if token.len() > MAX_TOKEN {
                return Err(PathError::Oversized);
            }
            if !is_jwt_shape(token) {
                return Err(PathError::Malformed);
            }
            (Some(token), file)
        }
        None => (None, rest),
    };
    let media = if app == "vod" {
        parse_vod(file)
    } else {
        parse_file(file).map(Media::Live)
    }
    .ok_or(PathError::Malformed)?;
    Ok(MediaPath { media, token })
}

/// Parses `<asset id>/<name>` of an asset's file.
fn parse_vod(file: &str) -> Option<Media> {
    let (asset, name) = file.split_once('/')?;
    Some(Media::Vod {
        asset: nova_store::keys::canonical(asset)?,
        file: VodFile::parse(name)?,
    })
}

/// Tells whether `token` is three non-empty base64url parts joined by dots.
fn is_jwt_shape(token: &str) -> bool {
    let b64 = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| b64(p))
}

/// Parses the file names nginx-rtmp writes for stream `<id>`: `<id>.m3u8`,
/// `<id>-<n>.ts`, `<id>.mpd`, `<id>-init.m4v|m4a`, `<id>-<n>.m4v|m4a`, and ABR's
/// `<id>_<rendition>/index.m3u8` and `<id>_<rendition>/<n>.ts`.
fn parse_file(file: &str) -> Option<Uuid> {
    let id = file.get(..36)?;
    // Only the canonical lower-case hyphenated form, as nginx writes it.
    let stream = Uuid::try_parse(id).ok()?;
    if stream.hyphenated().to_string() != id {
        return None;
    }
    let suffix = &file[36..];
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match suffix {
        ".m3u8" | ".mpd" | "-init.m4v" | "-init.m4a" => true,
        s if s.starts_with('-') => {
            let s = &s[1..];
            [".ts", ".m4v", ".m4a"]
                .iter()
                .any(|ext| s.strip_suffix(ext).is_some_and(digits))
        }
        s if s.starts_with('_') => s[1..].split_once('/').is_some_and(|(rendition, name)| {
            !rendition.is_empty()
                && rendition.len() <= 16
                && rendition
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && (name == "index.m3u8" || name.strip_suffix(".ts").is_some_and(digits))
        }),
        _ => false,
    };
    ok.then_some(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a2102f-4525-72d8-b6d1-96977f3fd789";
    const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

    #[test]
    fn every_file_nginx_writes_parses_plain_and_signed() {
        for file in [
            format!("{ID}.m3u8"),
            format!("{ID}-3.ts"),
            format!("{ID}.mpd"),
            format!("{ID}-init.m4v"),
            format!("{ID}-init.m4a"),
            format!("{ID}-123456.m4v"),
            format!("{ID}-123456.m4a"),
            format!("{ID}_480p/index.m3u8"),
            format!("{ID}_240p/17.ts"),
        ] {
            for app in ["hls", "dash", "abr"] {
                let plain_uri = format!("/{app}/{file}");
                let plain = parse(&plain_uri).unwrap();
                let id: Uuid = ID.parse().unwrap();
                assert_eq!((plain.media, plain.token), (Media::Live(id), None));
                let signed_uri = format!("/{app}/t/{TOKEN}/{file}?x=1");
                let signed = parse(&signed_uri).unwrap();
                assert_eq!(signed.token, Some(TOKEN));
            }
        }
    }

    #[test]
    fn asset_files_parse_plain_and_signed() {
        let asset: Uuid = ID.parse().unwrap();
        for (name, file) in [
            ("index.m3u8", VodFile::Playlist),
            ("0.ts", VodFile::Segment(0)),
            ("12.ts", VodFile::Segment(12)),
            ("download.mp4", VodFile::Download),
        ] {
            let plain_uri = format!("/vod/{ID}/{name}");
            let plain = parse(&plain_uri).unwrap();
            assert_eq!(
                (plain.media, plain.token),
                (Media::Vod { asset, file }, None)
            );
            let signed_uri = format!("/vod/t/{TOKEN}/{ID}/{name}?x=1");
            let signed = parse(&signed_uri).unwrap();
            assert_eq!(signed.token, Some(TOKEN));
        }
        for bad in [
            format!("/vod/{ID}.m3u8"),
            format!("/vod/{ID}/"),
            format!("/vod/{ID}/01.ts"),
            format!("/vod/{ID}/x/index.m3u8"),
            format!("/vod/{ID}/../{ID}/index.m3u8"),
            format!("/vod/{}/index.m3u8", ID.to_uppercase()),
            format!("/vod/t/{TOKEN}/{ID}/index.m3u8/"),
            format!("/vod/{ID}-3.ts"),
            format!("/hls/{ID}/index.m3u8"),
        ] {
            assert_eq!(parse(&bad), Err(PathError::Malformed), "{bad}");
        }
    }

    #[test]
    fn hostile_paths_do_not_parse() {
        for bad in [
            format!("/hls/{ID}.m3u8/../../etc/passwd"),
            format!("/hls/../hls/{ID}.m3u8"),
            format!("/hls/t/{TOKEN}/../{ID}.m3u8"),
            format!("/hls/t/{TOKEN}/x/../{ID}.m3u8"),
            format!("/hls/t/../{ID}.m3u8"),
            format!("/hls/t/./{ID}.m3u8"),
            format!("/hls/t//{ID}.m3u8"),
            format!("/hls//{ID}.m3u8"),
            format!("/hls/t/{TOKEN}%2F/{ID}.m3u8"),
            format!("/hls/%2e%2e/{ID}.m3u8"),
            format!("/hls/t/a.b/{ID}.m3u8"),
            format!("/hls/t/a..b/{ID}.m3u8"),
            format!("/hls/t/a.b.c.d/{ID}.m3u8"),
            format!("/hls/t/a.b c.d/{ID}.m3u8"),
            format!("/hls/{}.m3u8", ID.to_uppercase()),
            format!("/hls/{ID}.m3u8x"),
            format!("/hls/{ID}-.ts"),
            format!("/hls/{ID}-1.ts/"),
            format!("/hls/{ID}_480P/index.m3u8"),
            format!("/hls/{ID}_480p/../index.m3u8"),
            format!("/rec/{ID}.m3u8"),
            format!("hls/{ID}.m3u8"),
            "/hls/".into(),
            "".into(),
        ] {
            assert_eq!(parse(&bad), Err(PathError::Malformed), "{bad}");
        }
        let long = format!("/hls/t/{}.b.c/{ID}.m3u8", "a".repeat(MAX_TOKEN));
        assert_eq!(parse(&long), Err(PathError::Oversized));
    }
}
