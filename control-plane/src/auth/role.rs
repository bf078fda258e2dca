//! Service roles and what each may call: the method allowlists.

use std::fmt;

/// Prefix of every nova method path.
const PACKAGE: &str = "/nova.streaming.v1.";

/// What a service token lets its holder do. Each calling service has its own token
/// and so its own role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Operators and internal services: every method, may act for any user.
    Admin,
    /// The public edge: streams on behalf of its users, viewer sessions, analytics and
    /// the event feed; never the ingest lifecycle.
    Edge,
    /// ingest-hooks: the ingest lifecycle and RTMP players' sessions; never changes a
    /// stream otherwise and never acts for a user.
    Ingest,
}

/// Methods of the edge role. An entry ending in `/` admits every method of that
/// service (SessionService: joins, heartbeats, leaves and every count read,
/// including batched ones; WebhookService: the owner's endpoints); any other entry is
/// one exact method.
const EDGE: &[&str] = &[
    "StreamService/CreateStream",
    "StreamService/GetStream",
    "StreamService/ListStreams",
    "StreamService/EndStream",
    "StreamService/RotateStreamKey",
    "StreamService/UpdateStream",
    "SessionService/",
    "AnalyticsService/",
    "EventService/WatchEvents",
    "PlaybackService/CreatePlaybackToken",
    "PlaybackService/CreateSigningKey",
    "PlaybackService/ListSigningKeys",
    "PlaybackService/DeleteSigningKey",
    "AuditService/ListAuditRecords",
    "WebhookService/",
    "AssetService/ListAssets",
    "AssetService/GetAsset",
    "AssetService/DeleteAsset",
];

/// Methods of the ingest role (same notation as [`EDGE`]).
const INGEST: &[&str] = &[
    "IngestService/",
    "SessionService/JoinSession",
    "SessionService/Heartbeat",
    "SessionService/LeaveSession",
    "PlaybackService/GetPlaybackRules",
];

impl Role {
    /// Every role, in the order their variables are read.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Edge, Role::Ingest];

    /// Returns the role's name as logs, metrics and errors show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Edge => "edge",
            Role::Ingest => "ingest",
        }
    }

    /// Returns the variable holding this role's tokens on the control plane.
    pub fn variable(self) -> &'static str {
        match self {
            Role::Admin => "NOVA_SERVICE_TOKEN",
            Role::Edge => "NOVA_EDGE_SERVICE_TOKEN",
            Role::Ingest => "NOVA_INGEST_SERVICE_TOKEN",
        }
    }

    /// Tells whether this role may call `path` (`/nova.streaming.v1.Service/Method`).
    pub fn allows(self, path: &str) -> bool {
        let allowlist = match self {
            Role::Admin => return true,
            Role::Edge => EDGE,
            Role::Ingest => INGEST,
        };
        let Some(method) = path.strip_prefix(PACKAGE) else {
            return false;
        };
        allowlist.iter().any(|entry| {
            if entry.ends_with('/') {
                method
                    .strip_prefix(entry)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
            } else {
                method == *entry
            }
        })
    }

    /// Tells whether this role may name a user in `x-nova-principal`.
    pub fn may_act_for_users(self) -> bool {
        match self {
            Role::Admin | Role::Edge => true,
            Role::Ingest => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(method: &str) -> String {
        format!("{PACKAGE}{method}")
    }

    #[test]
    fn edge_cannot_reach_the_ingest_lifecycle() {
        for m in [
            "AuthorizePublish",
            "PublishEnded",
            "IngestHeartbeat",
            "ReportIngestHealth",
            "ReportRecording",
        ] {
            assert!(
                !Role::Edge.allows(&path(&format!("IngestService/{m}"))),
                "{m}"
            );
            assert!(
                Role::Ingest.allows(&path(&format!("IngestService/{m}"))),
                "{m}"
            );
            assert!(
                Role::Admin.allows(&path(&format!("IngestService/{m}"))),
                "{m}"
            );
        }
        for m in [
            "CreateStream",
            "GetStream",
            "ListStreams",
            "EndStream",
            "RotateStreamKey",
            "UpdateStream",
        ] {
            assert!(
                Role::Edge.allows(&path(&format!("StreamService/{m}"))),
                "{m}"
            );
        }
        assert!(Role::Edge.allows(&path("SessionService/BatchGetViewerCounts")));
        assert!(Role::Edge.allows(&path("AnalyticsService/GetStreamMetrics")));
        assert!(Role::Edge.allows(&path("EventService/WatchEvents")));
        assert!(Role::Edge.allows(&path("PlaybackService/CreatePlaybackToken")));
        assert!(!Role::Edge.allows(&path("PlaybackService/GetPlaybackRules")));
        assert!(Role::Ingest.allows(&path("PlaybackService/GetPlaybackRules")));
        assert!(!Role::Ingest.allows(&path("PlaybackService/CreatePlaybackToken")));
        assert!(!Role::Ingest.allows(&path("PlaybackService/DeleteSigningKey")));
        for m in [
            "CreateWebhook",
            "ListWebhookAttempts",
            "RedeliverWebhookEvent",
        ] {
            assert!(
                Role::Edge.allows(&path(&format!("WebhookService/{m}"))),
                "{m}"
            );
            assert!(
                !Role::Ingest.allows(&path(&format!("WebhookService/{m}"))),
                "{m}"
            );
        }
        for m in ["ListAssets", "GetAsset", "DeleteAsset"] {
            assert!(
                Role::Edge.allows(&path(&format!("AssetService/{m}"))),
                "{m}"
            );
            assert!(
                !Role::Ingest.allows(&path(&format!("AssetService/{m}"))),
                "{m}"
            );
        }
    }

    #[test]
    fn ingest_cannot_touch_streams_or_read_counts() {
        for m in [
            "CreateStream",
            "GetStream",
            "ListStreams",
            "EndStream",
            "RotateStreamKey",
        ] {
            assert!(
                !Role::Ingest.allows(&path(&format!("StreamService/{m}"))),
                "{m}"
            );
        }
        for m in ["JoinSession", "Heartbeat", "LeaveSession"] {
            assert!(
                Role::Ingest.allows(&path(&format!("SessionService/{m}"))),
                "{m}"
            );
        }
        assert!(!Role::Ingest.allows(&path("SessionService/GetViewerCount")));
        assert!(!Role::Ingest.allows(&path("EventService/WatchEvents")));
        assert!(!Role::Ingest.allows(&path("AnalyticsService/GetStreamMetrics")));
        assert!(!Role::Ingest.may_act_for_users());
        assert!(Role::Edge.may_act_for_users());
    }

    #[test]
    fn look_alike_paths_are_not_allowed() {
        for p in [
            "/nova.streaming.v1.SessionService/",
            "/nova.streaming.v1.SessionService/A/B",
            "/nova.streaming.v2.SessionService/JoinSession",
            "/nova.streaming.v1.StreamService/CreateStreamX",
            "/nova.streaming.v1.IngestService/AuthorizePublish",
            "nova.streaming.v1.SessionService/JoinSession",
        ] {
            assert!(!Role::Edge.allows(p), "{p}");
        }
    }
}
