//! A test audience: viewers that heartbeat and rejoin like the edge, and the ingest
//! node's heartbeats of their stream.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use nova_proto::v1::{HeartbeatRequest, IngestHeartbeatRequest, JoinSessionRequest, ViewerKind};

use crate::clients;

/// Viewers that heartbeat every period and rejoin (same viewer id) when told
/// their session is gone, as the edge does; plus the ingest node's heartbeats of the
/// live streams, whose answers must never fail.
pub struct Audience {
    /// `(viewer id, session id)` of each viewer still watching.
    viewers: Arc<Mutex<Vec<(String, String)>>>,
    /// Ingest heartbeats that failed or were refused.
    failed_ingest: Arc<Mutex<Vec<String>>>,
    /// The heartbeating task.
    task: tokio::task::JoinHandle<()>,
}

impl Audience {
    /// Joins `viewers` to `name` and starts heartbeating them and the stream's key
    /// every `period`.
    pub async fn start(
        sessions: &clients::Sessions,
        ingest: &clients::Ingest,
        name: &str,
        viewers: &[&str],
        key: &str,
        period: Duration,
    ) -> Self {
        let mut joined = Vec::new();
        for viewer in viewers {
            joined.push((
                viewer.to_string(),
                join(&mut sessions.clone(), name, viewer).await.unwrap(),
            ));
        }
        let viewers = Arc::new(Mutex::new(joined));
        let failed_ingest = Arc::new(Mutex::new(Vec::new()));
        let (mut sessions, mut ingest) = (sessions.clone(), ingest.clone());
        let (v, f, name, key) = (
            viewers.clone(),
            failed_ingest.clone(),
            name.to_owned(),
            key.to_owned(),
        );
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let heartbeat = ingest
                    .ingest_heartbeat(IngestHeartbeatRequest {
                        stream_key: key.clone(),
                        ingest_node: "ingest-test".into(),
                        client_id: "client-a".into(),
                    })
                    .await;
                match heartbeat {
                    Ok(r) if r.get_ref().allowed => {}
                    other => f.lock().unwrap().push(format!("{other:?}")),
                }
                let ids: Vec<String> = v.lock().unwrap().iter().map(|(_, s)| s.clone()).collect();
                let Ok(r) = sessions
                    .heartbeat(HeartbeatRequest { session_ids: ids })
                    .await
                else {
                    continue;
                };
                for gone in r.into_inner().expired_session_ids {
                    let viewer = v
                        .lock()
                        .unwrap()
                        .iter()
                        .find(|(_, s)| *s == gone)
                        .map(|(v, _)| v.clone());
                    let Some(viewer) = viewer else { continue };
                    if let Ok(session) = join(&mut sessions, &name, &viewer).await {
                        for entry in v.lock().unwrap().iter_mut().filter(|(id, _)| *id == viewer) {
                            entry.1 = session.clone();
                        }
                    }
                }
            }
        });
        Self {
            viewers,
            failed_ingest,
            task,
        }
    }

    /// Stops one viewer's heartbeats (its session then ends with Redis's loss).
    pub fn drop_viewer(&self, viewer: &str) {
        self.viewers.lock().unwrap().retain(|(v, _)| v != viewer);
    }

    /// Stops; returns the ingest heartbeats that failed or were refused.
    pub fn stop(self) -> Vec<String> {
        self.task.abort();
        self.failed_ingest.lock().unwrap().clone()
    }
}

/// Joins `viewer` to `name`; returns the session id.
pub async fn join(
    sessions: &mut clients::Sessions,
    name: &str,
    viewer: &str,
) -> Result<String, tonic::Status> {
    Ok(sessions
        .join_session(JoinSessionRequest {
            name: name.into(),
            viewer_id: viewer.into(),
            kind: ViewerKind::Web.into(),
            node: "edge-test".into(),
        })
        .await?
        .into_inner()
        .session_id)
}
