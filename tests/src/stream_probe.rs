//! Reads a stream back from the control plane while faults happen: its status and
//! live viewer count, with bounded waits that say what they saw last.

use std::time::Duration;

use nova_proto::v1::{GetStreamRequest, GetViewerCountRequest, StreamStatus};

use crate::{clients, wait};

/// Reads one stream back from the control plane.
pub struct Probe {
    /// Owner-side StreamService client.
    pub streams: clients::Streams,
    /// SessionService client (GetViewerCount).
    pub sessions: clients::Sessions,
    /// The stream's resource name.
    pub name: String,
}

impl Probe {
    /// Returns the stream's status, or the call's error message.
    pub async fn status(&self) -> Result<StreamStatus, String> {
        self.streams
            .clone()
            .get_stream(GetStreamRequest {
                name: self.name.clone(),
            })
            .await
            .map(|r| r.into_inner().stream.expect("stream").status())
            .map_err(|e| e.message().to_owned())
    }

    /// Waits (at most `timeout`) until the stream has `status`.
    pub async fn wait_for_status(&self, status: StreamStatus, timeout: Duration) {
        wait::until(&format!("the stream {status:?}"), timeout, || async {
            match self.status().await {
                Ok(s) if s == status => Ok(()),
                other => Err(other),
            }
        })
        .await;
    }

    /// Returns the live viewer count, or the call's error message.
    pub async fn count(&self) -> Result<i64, String> {
        self.sessions
            .clone()
            .get_viewer_count(GetViewerCountRequest {
                name: self.name.clone(),
            })
            .await
            .map(|r| r.into_inner().viewer_count)
            .map_err(|e| e.message().to_owned())
    }

    /// Waits (at most `timeout`) until the live viewer count is `viewers`.
    pub async fn wait_for_count(&self, viewers: i64, timeout: Duration) {
        wait::until(&format!("GetViewerCount {viewers}"), timeout, || async {
            match self.count().await {
                Ok(n) if n == viewers => Ok(()),
                other => Err(other),
            }
        })
        .await;
    }
}
