//! A control plane inside the test process, for unit tests of routes and sockets:
//! StreamService and SessionService on `127.0.0.1:0`, answering from a few streams
//! it is given and recording the sessions it was asked to leave. Every method a
//! test does not need answers UNIMPLEMENTED (the generated default stubs), and so
//! does BatchJoinSessions until [`FakeControlPlane::answer_batches`] (a control
//! plane from before it).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use nova_proto::v1::{
    BatchGetViewerCountsRequest, BatchGetViewerCountsResponse, BatchJoinSessionsRequest,
    BatchJoinSessionsResponse, GetStreamRequest, GetStreamResponse, GetViewerCountRequest,
    GetViewerCountResponse, JoinResult, JoinSessionRequest, JoinSessionResponse,
    LeaveSessionRequest, LeaveSessionResponse, ListStreamsRequest, ListStreamsResponse, Stream,
    StreamStatus, ViewerCount,
    session_service_server::{SessionService, SessionServiceServer},
    stream_service_server::{StreamService, StreamServiceServer},
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::{
    auth::{JwtRules, JwtVerifier},
    config::Config,
    metrics::EdgeMetrics,
    shutdown,
    state::AppState,
    upstream::Upstream,
};

/// The HS256 secret the edge state of [`FakeControlPlane::edge`] accepts.
pub(crate) const SECRET: &str = "unit-test-secret-0123456789abcdefghijkl";
/// The service token of that edge.
const SERVICE_TOKEN: &str = "unit-test-service-token";
/// Every stream's live viewer count.
pub(crate) const VIEWERS: i64 = 7;
/// Every stream's peak.
pub(crate) const PEAK: i64 = 9;

/// What the fake knows and what it was asked.
#[derive(Clone, Default)]
struct Books {
    /// Streams by resource name.
    streams: Arc<Mutex<HashMap<String, Stream>>>,
    /// Session ids handed out, in order.
    joined: Arc<Mutex<Vec<String>>>,
    /// Session ids left, in order.
    left: Arc<Mutex<Vec<String>>>,
    /// The viewer each session was joined for.
    viewers: Arc<Mutex<HashMap<String, String>>>,
    /// The size of every join call, in order (1 for JoinSession).
    calls: Arc<Mutex<Vec<usize>>>,
    /// Whether BatchJoinSessions answers.
    batches: Arc<AtomicBool>,
    /// Notified when a BatchJoinSessions call arrives, before it is answered.
    batch_arrived: Arc<tokio::sync::Notify>,
}

impl Books {
    /// Joins `request` (NOT_FOUND for a stream it does not know).
    fn join(&self, request: &JoinSessionRequest) -> Result<JoinSessionResponse, Status> {
        if !lock(&self.streams).contains_key(&request.name) {
            return Err(Status::not_found(format!(
                "stream {} not found",
                request.name
            )));
        }
        let mut joined = lock(&self.joined);
        let session_id = format!("session-{}", joined.len() + 1);
        joined.push(session_id.clone());
        lock(&self.viewers).insert(session_id.clone(), request.viewer_id.clone());
        Ok(JoinSessionResponse {
            session_id,
            expire_time: None,
            viewer_count: VIEWERS,
            peak_viewers: PEAK,
        })
    }
}

/// A running fake control plane; stops when dropped.
pub(crate) struct FakeControlPlane {
    /// Its gRPC URL.
    pub url: String,
    /// Its books.
    books: Books,
    /// The server task.
    server: JoinHandle<()>,
}

impl FakeControlPlane {
    /// Starts one on a free loopback port.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let books = Books::default();
        let serving = tonic::transport::Server::builder()
            .add_service(StreamServiceServer::new(books.clone()))
            .add_service(SessionServiceServer::new(books.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        let server = tokio::spawn(async move {
            let _ = serving.await;
        });
        Self { url, books, server }
    }

    /// Adds an ACTIVE, public stream owned by `owner` on node `edge-node-1`; returns
    /// its id.
    pub(crate) fn add_stream(&self, owner: &str) -> uuid::Uuid {
        let id = uuid::Uuid::new_v4();
        let name = format!("{}{id}", nova_proto::STREAM_NAME_PREFIX);
        let stream = Stream {
            name: name.clone(),
            stream_id: id.to_string(),
            owner: owner.to_owned(),
            title: format!("{owner}'s stream"),
            status: StreamStatus::Active as i32,
            ingest_node: "edge-node-1".to_owned(),
            ..Default::default()
        };
        lock(&self.books.streams).insert(name, stream);
        id
    }

    /// Returns the session ids handed out so far.
    pub(crate) fn joined(&self) -> Vec<String> {
        lock(&self.books.joined).clone()
    }

    /// Returns the viewer `session` was joined for.
    pub(crate) fn viewer_of(&self, session: &str) -> Option<String> {
        lock(&self.books.viewers).get(session).cloned()
    }

    /// Returns how many joins each join call carried, in order (1 for JoinSession).
    pub(crate) fn join_calls(&self) -> Vec<usize> {
        lock(&self.books.calls).clone()
    }

    /// Notified (one permit kept) when a BatchJoinSessions call arrives, before it
    /// is answered.
    pub(crate) fn batch_arrived(&self) -> Arc<tokio::sync::Notify> {
        self.books.batch_arrived.clone()
    }

    /// Makes BatchJoinSessions answer from now on.
    pub(crate) fn answer_batches(&self) {
        self.books.batches.store(true, Ordering::Relaxed);
    }

    /// Waits (at most five seconds) until `session` was left; panics otherwise.
    pub(crate) async fn wait_left(&self, session: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !lock(&self.books.left).iter().any(|s| s == session) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "session {session} was not left within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Builds an edge's state over this control plane, with `args` as extra flags;
    /// the trigger shuts it down.
    pub(crate) fn edge(&self, args: &[&str]) -> (AppState, shutdown::Trigger) {
        let mut all = vec![
            "nova-edge",
            "--service-token",
            SERVICE_TOKEN,
            "--control-plane-url",
            &self.url,
            "--jwt-hs256-secret",
            SECRET,
        ];
        all.extend_from_slice(args);
        let config = <Config as clap::Parser>::try_parse_from(all).unwrap();
        config.validate().unwrap();
        let upstream = Upstream::new(&self.url, None, SERVICE_TOKEN).unwrap();
        let jwt = JwtVerifier::new(&JwtRules {
            hs256_secrets: Some(SECRET),
            rs256_public_key: None,
            issuer: None,
            audience: None,
            max_lifetime: config.jwt_max_lifetime,
        })
        .unwrap();
        let (trigger, stop) = shutdown::channel();
        let state = AppState::new(config, upstream, jwt, EdgeMetrics::new().unwrap(), stop);
        (state, trigger)
    }
}

impl Drop for FakeControlPlane {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[tonic::async_trait]
impl StreamService for Books {
    async fn get_stream(
        &self,
        request: Request<GetStreamRequest>,
    ) -> Result<Response<GetStreamResponse>, Status> {
        let name = request.into_inner().name;
        let stream = lock(&self.streams)
            .get(&name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("stream {name} not found")))?;
        Ok(Response::new(GetStreamResponse {
            stream: Some(stream),
        }))
    }

    async fn list_streams(
        &self,
        _: Request<ListStreamsRequest>,
    ) -> Result<Response<ListStreamsResponse>, Status> {
        let mut streams: Vec<Stream> = lock(&self.streams).values().cloned().collect();
        streams.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(ListStreamsResponse {
            streams,
            next_page_token: String::new(),
        }))
    }
}

#[tonic::async_trait]
impl SessionService for Books {
    async fn join_session(
        &self,
        request: Request<JoinSessionRequest>,
    ) -> Result<Response<JoinSessionResponse>, Status> {
        lock(&self.calls).push(1);
        self.join(request.get_ref()).map(Response::new)
    }

    async fn batch_join_sessions(
        &self,
        request: Request<BatchJoinSessionsRequest>,
    ) -> Result<Response<BatchJoinSessionsResponse>, Status> {
        if !self.batches.load(Ordering::Relaxed) {
            return Err(Status::unimplemented("BatchJoinSessions"));
        }
        self.batch_arrived.notify_one();
        let joins = request.into_inner().joins;
        lock(&self.calls).push(joins.len());
        let results = joins
            .iter()
            .map(|join| JoinResult::of(self.join(join)))
            .collect();
        Ok(Response::new(BatchJoinSessionsResponse { results }))
    }

    async fn leave_session(
        &self,
        request: Request<LeaveSessionRequest>,
    ) -> Result<Response<LeaveSessionResponse>, Status> {
        lock(&self.left).push(request.into_inner().session_id);
        Ok(Response::new(LeaveSessionResponse::default()))
    }

    async fn get_viewer_count(
        &self,
        _: Request<GetViewerCountRequest>,
    ) -> Result<Response<GetViewerCountResponse>, Status> {
        Ok(Response::new(GetViewerCountResponse {
            viewer_count: VIEWERS,
            peak_viewers: PEAK,
            ..Default::default()
        }))
    }

    async fn batch_get_viewer_counts(
        &self,
        request: Request<BatchGetViewerCountsRequest>,
    ) -> Result<Response<BatchGetViewerCountsResponse>, Status> {
        let viewer_counts = request
            .into_inner()
            .names
            .into_iter()
            .map(|name| ViewerCount {
                name,
                viewer_count: VIEWERS,
                peak_viewers: PEAK,
            })
            .collect();
        Ok(Response::new(BatchGetViewerCountsResponse {
            viewer_counts,
        }))
    }
}
