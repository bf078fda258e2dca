//! Viewer sessions of token playback: a token's session (`sid`) becomes a viewer
//! session at its first authorised request, is renewed while its player keeps
//! requesting files, and is left once it has been quiet for [`IDLE`]. So ffplay,
//! Safari or a TV app appear in viewer counts, uniques and watch time without a
//! player SDK, each session once however many files it fetches.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::verify::Refusal;
use crate::{shutdown, upstream::Upstream};

/// A session whose player requested nothing for this long is left. Players ask
/// for the playlist every target duration (1–2 s here); nginx's decision cache lets
/// one request a second through per token.
pub const IDLE: Duration = Duration::from_secs(15);
/// Time between two renewals of the live sessions (the control plane's session TTL
/// is 30 s by default).
pub const RENEW: Duration = Duration::from_secs(5);

/// One token session.
#[derive(Debug)]
struct Entry {
    /// The control plane's session id, once joined.
    session: Option<String>,
    /// Last authorised request.
    last_seen: Instant,
    /// Whether a join is in flight.
    joining: bool,
}

/// Token sessions of this origin by (stream, sid); cheap to clone.
#[derive(Clone, Default)]
pub struct Viewers {
    /// The sessions.
    entries: Arc<Mutex<HashMap<(Uuid, String), Entry>>>,
}

impl Viewers {
    /// Admits an authorised request of session `sid` on `stream` whose viewer cap is
    /// `cap`. A session already counted goes on; a new one on a capped stream is
    /// joined before the answer, and refused when the control plane finds the
    /// stream at its cap (it checks and joins in one step, so a refused viewer
    /// costs one call and leaves no trace in the figures). Without a cap the join
    /// runs in the background ([`Viewers::seen`]).
    pub async fn admit(
        &self,
        upstream: &Upstream,
        stream: Uuid,
        sid: &str,
        cap: Option<i64>,
    ) -> Result<(), Refusal> {
        if cap.is_none() {
            self.seen(upstream, stream, sid);
            return Ok(());
        }
        let key = (stream, sid.to_owned());
        {
            let mut entries = self.lock();
            if let Some(entry) = entries.get_mut(&key)
                && (entry.session.is_some() || entry.joining)
            {
                entry.last_seen = Instant::now();
                return Ok(());
            }
            entries.insert(
                key.clone(),
                Entry {
                    session: None,
                    last_seen: Instant::now(),
                    joining: true,
                },
            );
        }
        let joined = upstream
            .join_playback(format!("streams/{stream}"), sid.to_owned())
            .await;
        match joined {
            Ok(None) => {
                self.lock().remove(&key);
                Err(Refusal::Capacity)
            }
            Ok(Some(session)) => {
                if let Some(entry) = self.lock().get_mut(&key) {
                    entry.session = Some(session);
                    entry.joining = false;
                }
                tracing::info!(stream.id = %stream, "playback viewer joined");
                Ok(())
            }
            Err(err) => {
                // Counting must not stop anyone from watching: admitted, joined later.
                tracing::warn!(error = %err, "could not record a playback viewer");
                if let Some(entry) = self.lock().get_mut(&key) {
                    entry.joining = false;
                }
                Ok(())
            }
        }
    }

    /// Records an authorised request of session `sid` on `stream`; joins the
    /// session in the background when it is new (or was lost).
    pub fn seen(&self, upstream: &Upstream, stream: Uuid, sid: &str) {
        let key = (stream, sid.to_owned());
        let join = {
            let mut entries = self.lock();
            let entry = entries.entry(key.clone()).or_insert(Entry {
                session: None,
                last_seen: Instant::now(),
                joining: false,
            });
            entry.last_seen = Instant::now();
            let join = entry.session.is_none() && !entry.joining;
            entry.joining |= join;
            join
        };
        if !join {
            return;
        }
        let (viewers, upstream) = (self.clone(), upstream.clone());
        tokio::spawn(async move {
            let joined = upstream
                .join_playback(format!("streams/{}", key.0), key.1.clone())
                .await;
            let mut entries = viewers.lock();
            let Some(entry) = entries.get_mut(&key) else {
                // Left while joining: leave the new session too.
                if let Ok(Some(session)) = joined {
                    tokio::spawn(async move { upstream.leave_player(session).await });
                }
                return;
            };
            entry.joining = false;
            match joined {
                Ok(Some(session)) => {
                    tracing::info!(stream.id = %key.0, "playback viewer joined");
                    entry.session = Some(session);
                }
                // A cap this origin has not learned yet: uncounted until it has.
                Ok(None) => {
                    tracing::info!(stream.id = %key.0, "playback viewer beyond the stream's cap not counted")
                }
                Err(err) => tracing::warn!(error = %err, "could not record a playback viewer"),
            }
        });
    }

    /// Returns how many token sessions this origin tracks.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Tells whether no token session is tracked.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Leaves the sessions quiet for [`IDLE`] and renews the others; sessions the
    /// control plane reports gone are joined again at their next request.
    async fn sweep(&self, upstream: &Upstream) {
        let now = Instant::now();
        let (quiet, live): (Vec<String>, Vec<String>) = {
            let mut entries = self.lock();
            let mut quiet = Vec::new();
            entries.retain(|_, e| {
                let keep = now.duration_since(e.last_seen) < IDLE;
                if !keep && let Some(s) = e.session.take() {
                    quiet.push(s);
                }
                keep
            });
            let live = entries.values().filter_map(|e| e.session.clone()).collect();
            (quiet, live)
        };
        for session in quiet {
            if let Err(err) = upstream.leave_player(session).await {
                tracing::warn!(error = %err, "could not end a playback viewer's session; it will expire");
            }
        }
        if live.is_empty() {
            return;
        }
        match upstream.renew_sessions(live).await {
            Ok(expired) if !expired.is_empty() => {
                let mut entries = self.lock();
                for entry in entries.values_mut() {
                    if entry.session.as_ref().is_some_and(|s| expired.contains(s)) {
                        entry.session = None;
                    }
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "could not renew playback viewers"),
        }
    }

    /// Leaves every session this origin holds (on shutdown), all at once, giving up
    /// after `deadline`: the sessions of a gracefully stopped verifier do not stay
    /// counted until their TTL while its successor joins them again. Sessions not
    /// left in time (or after SIGKILL) expire with their TTL.
    pub async fn leave_all(&self, upstream: &Upstream, deadline: Duration) {
        let sessions: Vec<String> = self.lock().drain().filter_map(|(_, e)| e.session).collect();
        if sessions.is_empty() {
            return;
        }
        let total = sessions.len();
        let mut leaving = tokio::task::JoinSet::new();
        for session in sessions {
            let upstream = upstream.clone();
            leaving.spawn(async move { upstream.leave_player(session).await.is_ok() });
        }
        let mut left = 0;
        let all = async {
            while let Some(done) = leaving.join_next().await {
                left += usize::from(matches!(done, Ok(true)));
            }
        };
        let _ = tokio::time::timeout(deadline, all).await;
        if left < total {
            tracing::warn!(
                sessions.left = left,
                sessions.total = total,
                "some playback viewers were not left on shutdown; they will expire"
            );
        } else {
            tracing::info!(sessions.left = left, "playback viewers left on shutdown");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, String), Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Renews and leaves token sessions every [`RENEW`] until shutdown.
pub async fn run(viewers: Viewers, upstream: Upstream, stop: shutdown::Signal) {
    let mut tick = tokio::time::interval(RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => viewers.sweep(&upstream).await,
            () = stop.clone().wait() => return,
        }
    }
}
