//! Resource names: `streams/{stream_id}`, `assets/{asset_id}`.

use nova_proto::{ASSET_NAME_PREFIX, STREAM_NAME_PREFIX};
use uuid::Uuid;

use crate::error::Error;

/// Parses `streams/{uuid}` from the request field `field`.
pub fn parse_stream_name(field: &'static str, name: &str) -> Result<Uuid, Error> {
    let id = name
        .strip_prefix(STREAM_NAME_PREFIX)
        .ok_or_else(|| Error::invalid(field, "must look like streams/{stream_id}"))?;
    Uuid::try_parse(id).map_err(|_| Error::invalid(field, "stream_id must be a UUID"))
}

/// Formats the resource name of a stream.
pub fn stream_name(id: Uuid) -> String {
    format!("{STREAM_NAME_PREFIX}{id}")
}

/// Parses `assets/{uuid}` from the request field `field`.
pub fn parse_asset_name(field: &'static str, name: &str) -> Result<Uuid, Error> {
    let id = name
        .strip_prefix(ASSET_NAME_PREFIX)
        .ok_or_else(|| Error::invalid(field, "must look like assets/{asset_id}"))?;
    Uuid::try_parse(id).map_err(|_| Error::invalid(field, "asset_id must be a UUID"))
}

/// Formats the resource name of an asset.
pub fn asset_name(id: Uuid) -> String {
    format!("{ASSET_NAME_PREFIX}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_garbage_is_named() {
        let id = Uuid::now_v7();
        assert_eq!(parse_stream_name("name", &stream_name(id)).unwrap(), id);
        assert_eq!(parse_asset_name("name", &asset_name(id)).unwrap(), id);
        assert!(parse_asset_name("name", &stream_name(id)).is_err());
        for bad in [
            "",
            "streams/",
            "streams/xyz",
            "stream/0193",
            &id.to_string(),
        ] {
            match parse_stream_name("name", bad) {
                Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "name"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
