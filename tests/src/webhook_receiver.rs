//! A real HTTP webhook receiver on 127.0.0.1 for tests: records every request it
//! gets (headers, body, what it answered) and answers as scripted: a queue of
//! statuses for the first requests, then a default, or held open until released.
//! Signatures are checked here with an HMAC of our own, independent of the control
//! plane's code.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `Nova-Event-Id`.
    pub event_id: String,
    /// `Nova-Event-Type`.
    pub event_type: String,
    /// `Nova-Signature`.
    pub signature: String,
    /// The raw body.
    pub body: Bytes,
    /// What the receiver answered.
    pub answered: u16,
}

impl Delivery {
    /// Returns the body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Tells whether the signature header carries a valid `v1` for `secret` over
    /// this body at its `t`.
    pub fn signed_with(&self, secret: &str) -> bool {
        let mut t = None;
        let mut signatures = Vec::new();
        for part in self.signature.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => t = Some(value.to_owned()),
                Some(("v1", value)) => signatures.push(value.to_owned()),
                _ => {}
            }
        }
        let Some(t) = t else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("an HMAC key");
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        signatures.contains(&expected)
    }
}

/// What the receiver shares with its handler.
#[derive(Default)]
struct Shared {
    /// Statuses for the next requests, in order.
    script: VecDeque<u16>,
    /// Status once the script is done.
    status: u16,
    /// Every request so far.
    deliveries: Vec<Delivery>,
    /// Requests being answered now, and the most at once.
    in_flight: usize,
    /// The most requests answered at once.
    max_in_flight: usize,
    /// How long each answer takes (a slow receiver).
    delay: std::time::Duration,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    shared: Arc<Mutex<Shared>>,
    /// While `true`, requests are held open (not answered).
    hold: watch::Sender<bool>,
    /// The server.
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver answering `failures` first, then 200.
    pub async fn start(failures: &[u16]) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            script: failures.iter().copied().collect(),
            status: 200,
            ..Shared::default()
        }));
        let (hold, held) = watch::channel(false);
        let app = Router::new()
            .route("/{*path}", post(handle))
            .route("/", post(handle))
            .with_state((shared.clone(), held));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a receiver");
        let addr = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            shared,
            hold,
            task,
        }
    }

    /// Returns the URL of `path` on this receiver (`http://127.0.0.1:<port><path>`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `status` from now on (after the script).
    pub fn answer(&self, status: u16) {
        self.shared.lock().expect("receiver state").status = status;
    }

    /// Takes `delay` over each answer from now on, like a slow receiver.
    pub fn slow_down(&self, delay: std::time::Duration) {
        self.shared.lock().expect("receiver state").delay = delay;
    }

    /// Holds requests open (`true`) or answers them, the held ones too (`false`).
    pub fn hold(&self, on: bool) {
        self.hold.send_replace(on);
    }

    /// Returns every request so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared
            .lock()
            .expect("receiver state")
            .deliveries
            .clone()
    }

    /// Returns the requests answered 2xx, in arrival order.
    pub fn acknowledged(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|d| (200..300).contains(&d.answered))
            .collect()
    }

    /// Returns how many requests are being answered now.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().expect("receiver state").in_flight
    }

    /// Returns the most requests it answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.lock().expect("receiver state").max_in_flight
    }

    /// Returns how many times each event id was acknowledged.
    pub fn acknowledged_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for d in self.acknowledged() {
            *counts.entry(d.event_id).or_insert(0) += 1;
        }
        counts
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type HandlerState = (Arc<Mutex<Shared>>, watch::Receiver<bool>);

async fn handle(
    State((shared, mut held)): State<HandlerState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let delay = {
        let mut s = shared.lock().expect("receiver state");
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        s.delay
    };
    let _ = held.wait_for(|on| !on).await;
    tokio::time::sleep(delay).await;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut s = shared.lock().expect("receiver state");
    s.in_flight -= 1;
    let answered = match s.script.pop_front() {
        Some(status) => status,
        None => s.status,
    };
    s.deliveries.push(Delivery {
        event_id: header("nova-event-id"),
        event_type: header("nova-event-type"),
        signature: header("nova-signature"),
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
