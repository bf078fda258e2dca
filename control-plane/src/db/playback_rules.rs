//! The streams a media origin's token verifier must know.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    policy::PlaybackPolicy,
    schema::{assets, streams},
    status::{AssetStatus, StreamStatus},
};

/// A stream as a verifier sees it: id, owner, stored playback policy and viewer cap.
pub type RuleRow = (Uuid, String, String, Option<i32>);

/// Returns the signed streams not completed, or completed after `ended_since` (their
/// last files may still be on an origin), the public streams on air, and every
/// stream with a READY asset (the VOD origin serves it by its stream's policy).
pub async fn streams(
    conn: &mut AsyncPgConnection,
    ended_since: DateTime<Utc>,
) -> QueryResult<Vec<RuleRow>> {
    let recent = streams::ended_at
        .is_null()
        .or(streams::ended_at.gt(ended_since));
    let signed = streams::playback_policy
        .eq(PlaybackPolicy::Signed.as_db())
        .and(recent);
    let on_air = streams::status.eq_any([
        StreamStatus::Active.as_db(),
        StreamStatus::Interrupted.as_db(),
    ]);
    let recorded = streams::id.eq_any(
        assets::table
            .filter(assets::status.eq(AssetStatus::Ready.as_db()))
            .select(assets::stream_id),
    );
    streams::table
        .filter(signed.or(on_air).or(recorded))
        .select((
            streams::id,
            streams::owner,
            streams::playback_policy,
            streams::max_viewers,
        ))
        .load(conn)
        .await
}
