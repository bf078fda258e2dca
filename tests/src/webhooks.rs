//! The world of the webhook tests: a control plane whose dispatcher retries fast and
//! may reach loopback receivers, an edge for the REST API, and the calls that drive
//! a stream through its lifecycle over gRPC (as ingest-hooks would).

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use nova_control_plane::Config;
use nova_proto::v1::{
    AuthorizePublishRequest, EndStreamRequest, PublishEndedRequest, RotateStreamKeyRequest, Stream,
};
use serde_json::{Value, json};

use crate::{
    TestContext, clients,
    edge::{self, Reply, call, jwt},
    wait,
};

/// How long a test waits for deliveries.
pub const WAIT: Duration = Duration::from_secs(30);

/// Dispatcher settings for tests: loopback allowed, quick polls and retries.
pub fn fast(config: &mut Config) {
    config.webhooks.allow_private = true;
    config.webhooks.poll_interval = Duration::from_millis(100);
    config.webhooks.retry_min = Duration::from_millis(100);
    config.webhooks.retry_max = Duration::from_millis(400);
    config.webhooks.timeout = Duration::from_secs(5);
}

/// A control plane, an edge, and gRPC clients acting for `alice`.
pub struct World {
    /// The control plane.
    pub ctx: TestContext,
    /// The edge.
    pub edge: nova_edge::Edge,
    /// `http://<edge>/api/v1`.
    pub api: String,
    /// StreamService as `alice`.
    pub streams: clients::Streams,
    /// IngestService (admin token).
    pub ingest: clients::Ingest,
}

impl World {
    /// Starts the world with [`fast`] settings, then `adjust`.
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
        let ctx = TestContext::start_with(|config| {
            fast(config);
            adjust(config);
        })
        .await;
        Self::on(ctx).await
    }

    /// Builds the world around a running control plane.
    pub async fn on(ctx: TestContext) -> Self {
        let edge = edge::start(&ctx, "edge-webhooks").await;
        let api = format!("http://{}/api/v1", edge.addr);
        let streams = clients::streams(&ctx.url(), Some(&ctx.token), Some("alice")).await;
        let ingest = clients::ingest(&ctx.url(), &ctx.token).await;
        Self {
            ctx,
            edge,
            api,
            streams,
            ingest,
        }
    }

    /// Sends `method /api/v1<path>` as `owner`.
    pub async fn rest(&self, owner: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        call(
            method,
            &format!("{}{path}", self.api),
            Some(&jwt(owner)),
            body.as_deref(),
        )
        .await
    }

    /// Registers an endpoint of `owner` for `events` (all when `None`); returns its id
    /// and secret.
    pub async fn register(
        &self,
        owner: &str,
        url: &str,
        events: Option<&[&str]>,
    ) -> (String, String) {
        let mut body = json!({ "url": url });
        if let Some(events) = events {
            body["events"] = json!(events);
        }
        let created = self.rest(owner, "POST", "/webhooks", Some(body)).await;
        assert_eq!(created.status, 201, "{:?}", created.json);
        (
            created.json["webhook"]["id"].as_str().unwrap().to_owned(),
            created.json["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Returns endpoint `id` of `owner` as JSON.
    pub async fn webhook(&self, owner: &str, id: &str) -> Value {
        let got = self
            .rest(owner, "GET", &format!("/webhooks/{id}"), None)
            .await;
        assert_eq!(got.status, 200, "{:?}", got.json);
        got.json["webhook"].clone()
    }

    /// Returns every attempt of endpoint `id` of `owner`, oldest first.
    pub async fn attempts(&self, owner: &str, id: &str) -> Vec<Value> {
        let got = self
            .rest(
                owner,
                "GET",
                &format!("/webhooks/{id}/attempts?page_size=1000"),
                None,
            )
            .await;
        assert_eq!(got.status, 200, "{:?}", got.json);
        let mut attempts = got.json["attempts"].as_array().unwrap().clone();
        attempts.reverse();
        attempts
    }

    /// Waits until `owner`'s endpoint `id` has made `n` attempts; returns them.
    pub async fn wait_attempts(&self, owner: &str, id: &str, n: usize) -> Vec<Value> {
        wait::until(
            &format!("{n} attempts at endpoint {id}"),
            WAIT,
            || async move {
                let attempts = self.attempts(owner, id).await;
                if attempts.len() >= n {
                    Ok(attempts)
                } else {
                    Err(attempts)
                }
            },
        )
        .await
    }

    /// Creates a stream of `alice`; returns it and its key.
    pub async fn create_stream(&mut self, title: &str) -> (Stream, String) {
        crate::clients::create_titled(&mut self.streams, title).await
    }

    /// A publish with `key` is accepted (`stream.active`, or `stream.resumed`).
    pub async fn publish(&mut self, key: &str) {
        self.ingest
            .authorize_publish(AuthorizePublishRequest {
                stream_key: key.into(),
                client_addr: "127.0.0.1".into(),
                app: "live".into(),
                ingest_node: "ingest-a".into(),
                origin_url: "http://127.0.0.1:8080".into(),
                abr: false,
                client_id: "17".into(),
                recording: false,
            })
            .await
            .unwrap();
    }

    /// The broadcaster with `key` leaves (`stream.interrupted`).
    pub async fn leave(&mut self, key: &str) {
        self.ingest
            .publish_ended(PublishEndedRequest {
                stream_key: key.into(),
                ingest_node: "ingest-a".into(),
                client_id: "17".into(),
            })
            .await
            .unwrap();
    }

    /// Rotates the key of stream `name` (`stream.key_rotated`); returns the new key.
    pub async fn rotate(&mut self, name: &str) -> String {
        self.streams
            .rotate_stream_key(RotateStreamKeyRequest { name: name.into() })
            .await
            .unwrap()
            .into_inner()
            .stream_key
    }

    /// Ends stream `name` (`stream.completed`).
    pub async fn end(&mut self, name: &str) {
        self.streams
            .end_stream(EndStreamRequest { name: name.into() })
            .await
            .unwrap();
    }

    /// Stops the edge and the control plane.
    pub async fn shutdown(mut self) {
        self.edge.shutdown().await.expect("edge stops");
        self.ctx.shutdown().await.expect("control plane stops");
    }
}

/// One event of an owner's durable log.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
pub struct OwnerEvent {
    /// Log position.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Stream id, empty for account events.
    #[diesel(sql_type = Text)]
    pub stream_id: String,
    /// Kind as logged.
    #[diesel(sql_type = Text)]
    pub kind: String,
}

/// Returns `owner`'s logged events (streams and account), oldest first.
pub async fn owner_log(ctx: &TestContext, owner: &str) -> Vec<OwnerEvent> {
    let mut db = ctx.db().await;
    diesel::sql_query(
        "SELECT id, stream_id::text AS stream_id, kind FROM stream_events WHERE owner = $1 \
         UNION ALL SELECT id, '' AS stream_id, kind FROM account_events WHERE owner = $1 \
         ORDER BY id",
    )
    .bind::<Text, _>(owner)
    .load(&mut db)
    .await
    .expect("read the owner's log")
}
