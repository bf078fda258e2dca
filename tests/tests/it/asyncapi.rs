//! The WebSocket contract, `docs/asyncapi.yaml`: valid AsyncAPI 3.0 (checked by
//! check-jsonschema against the AsyncAPI project's own JSON Schema, from npm
//! `@asyncapi/specs`), examples that match their messages, schemas strict enough to
//! refuse a wrong frame, and close codes the real edge sends. Every frame of every
//! WebSocket test is checked against it too (`nova_tests::frames`, from
//! `edge::Viewer::next`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_tests::{
    TestContext,
    edge::{self, Ended, Viewer, call, jwt},
    frames,
    tools::workspace_root,
};
use serde_json::{Value, json};

/// The five messages the edge sends (`edge/src/ws/socket.rs`, `edge/src/json.rs`).
const MESSAGES: [&str; 5] = [
    "quality_changed",
    "snapshot",
    "stream_ended",
    "stream_started",
    "viewer_count_changed",
];

#[test]
fn the_document_is_valid_asyncapi_3() {
    let root = workspace_root();
    let checker = root.join(".nova/tools/venv/bin/check-jsonschema");
    let schema = root.join(".nova/tools/node_modules/@asyncapi/specs/schemas/3.0.0.json");
    for path in [&checker, &schema] {
        assert!(
            path.exists(),
            "{} missing: run `make deps` (scripts/install-deps.sh)",
            path.display()
        );
    }
    let output = std::process::Command::new(&checker)
        .arg("--schemafile")
        .arg(&schema)
        .arg(root.join("docs/asyncapi.yaml"))
        .output()
        .expect("run check-jsonschema");
    assert!(
        output.status.success(),
        "docs/asyncapi.yaml is not valid AsyncAPI 3.0:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(frames::document()["asyncapi"], "3.0.0");
}

#[test]
fn every_message_is_sent_by_the_one_operation_and_has_examples_that_match_it() {
    assert_eq!(frames::message_names(), MESSAGES);
    let doc = frames::document();
    let channel = &doc["channels"]["streamEvents"];
    assert_eq!(channel["address"], "/api/v1/streams/{id}/ws");
    let operation = &doc["operations"]["sendStreamEvents"];
    assert_eq!(operation["action"], "send");
    let sent: Vec<&str> = operation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["$ref"].as_str().unwrap())
        .collect();
    for name in MESSAGES {
        assert_eq!(
            channel["messages"][name]["$ref"],
            format!("#/components/messages/{name}"),
            "the channel lists {name}"
        );
        assert!(
            sent.contains(&format!("#/channels/streamEvents/messages/{name}").as_str()),
            "the operation sends {name}"
        );
        let message = &doc["components"]["messages"][name];
        assert_eq!(message["name"], name);
        let examples = message["examples"].as_array().unwrap();
        assert!(!examples.is_empty(), "{name} has examples");
        for example in examples {
            let payload = &example["payload"];
            assert_eq!(payload["type"], name, "example {}", example["name"]);
            frames::check(payload).unwrap_or_else(|e| {
                panic!("example {} of {name} does not match: {e}", example["name"])
            });
        }
    }
}

/// Returns the first example payload of `message`.
fn example(message: &str) -> Value {
    frames::document()["components"]["messages"][message]["examples"][0]["payload"].clone()
}

/// Returns `frame` with `field` set to `value`.
fn with(mut frame: Value, field: &str, value: Value) -> Value {
    frame[field] = value;
    frame
}

/// Returns `frame` without `field`.
fn without(mut frame: Value, field: &str) -> Value {
    frame.as_object_mut().unwrap().remove(field);
    frame
}

#[test]
fn frames_that_break_the_contract_are_refused() {
    let wrong = [
        ("unknown type", json!({"type": "stream_paused"})),
        ("no type", without(example("snapshot"), "type")),
        (
            "extra field",
            with(example("snapshot"), "viewer", json!("v1")),
        ),
        (
            "missing field",
            without(example("snapshot"), "peak_viewers"),
        ),
        (
            "status outside the enum",
            with(example("snapshot"), "status", json!("live")),
        ),
        (
            "count as a string",
            with(example("viewer_count_changed"), "viewer_count", json!("3")),
        ),
        (
            "negative count",
            with(example("viewer_count_changed"), "viewer_count", json!(-1)),
        ),
        (
            "stream id not a UUID",
            with(example("viewer_count_changed"), "stream_id", json!("abc")),
        ),
        (
            "time without milliseconds",
            with(example("snapshot"), "at", json!("2026-12-01T15:04:05Z")),
        ),
        (
            "numeric cursor",
            with(example("stream_started"), "cursor", json!(42)),
        ),
        (
            "null playback on stream_started",
            with(example("stream_started"), "playback", Value::Null),
        ),
        (
            "playback without dash_url",
            with(
                example("stream_started"),
                "playback",
                json!({"hls_url": "h", "hls_master_url": ""}),
            ),
        ),
        (
            "unknown end reason",
            with(example("stream_ended"), "reason", json!("bored")),
        ),
        (
            "ended while active",
            with(example("stream_ended"), "status", json!("active")),
        ),
        (
            "rendition without bitrate",
            with(
                example("quality_changed"),
                "renditions",
                json!([{"name": "src", "width": 1, "height": 1}]),
            ),
        ),
    ];
    for (what, frame) in wrong {
        assert!(
            frames::check(&frame).is_err(),
            "{what}: {frame} should be refused"
        );
    }
}

/// Returns the `(code, reason)` pairs of the channel's `x-close-codes`.
fn close_codes() -> Vec<(u16, String)> {
    frames::document()["channels"]["streamEvents"]["x-close-codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                u16::try_from(c["code"].as_u64().unwrap()).unwrap(),
                c["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_close_codes_are_the_edges() {
    let codes: Vec<u16> = close_codes().iter().map(|(code, _)| *code).collect();
    use nova_edge::ws::socket::{
        CLOSE_GOING_AWAY, CLOSE_NOT_FOUND, CLOSE_TOO_SLOW, CLOSE_UNAVAILABLE,
    };
    for code in [
        CLOSE_NOT_FOUND,
        4410,
        CLOSE_TOO_SLOW,
        CLOSE_UNAVAILABLE,
        CLOSE_GOING_AWAY,
        1000,
    ] {
        assert!(codes.contains(&code), "{code} is documented");
    }
    let description = frames::document()["info"]["description"].as_str().unwrap();
    for (code, reason) in close_codes() {
        assert!(
            description.contains(&format!("| {code} | `{reason}` |")),
            "the close-code table in info.description names {code} {reason:?}"
        );
    }
}

/// A socket to a stream that does not exist, and to one that has completed, is
/// closed with a documented code and its exact reason; a live socket's frames are
/// checked against the schemas by `Viewer::next`.
#[tokio::test(flavor = "multi_thread")]
async fn the_real_edge_closes_with_documented_codes_and_sends_documented_frames() {
    let ctx = TestContext::start().await;
    let e = edge::start(&ctx, "edge-asyncapi").await;
    let base = format!("http://{}", e.addr);
    let documented = close_codes();
    let timeout = Duration::from_secs(5);

    let mut nowhere = Viewer::connect(&base, &uuid::Uuid::now_v7().to_string()).await;
    match nowhere.until_closed(timeout).await {
        Ended::Closed(code, reason) => {
            assert_eq!((code, reason.as_str()), (4404, "stream not found"));
            assert!(documented.contains(&(code, reason)));
        }
        other => panic!("expected a close frame, got {other:?}"),
    }

    let alice = jwt("alice");
    let created = call(
        "POST",
        &format!("{base}/api/v1/streams"),
        Some(&alice),
        Some(r#"{"title":"Contract"}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.json);
    let id = created.json["stream"]["id"].as_str().unwrap().to_owned();

    // A pending stream: snapshot (playback null), then counts as viewers come.
    let mut first = Viewer::connect(&base, &id).await;
    let snapshot = first.next_of("snapshot", timeout).await;
    assert_eq!(snapshot["status"], "pending");
    let mut second = Viewer::connect(&base, &id).await;
    second.next_of("snapshot", timeout).await;
    first.until_count(2, timeout).await;

    let ended = call(
        "DELETE",
        &format!("{base}/api/v1/streams/{id}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(ended.status, 200, "{:?}", ended.json);
    let end = first.next_of("stream_ended", timeout).await;
    assert_eq!(end["status"], "completed");
    assert_eq!(end["reason"], "ended_by_owner");

    let mut late = Viewer::connect(&base, &id).await;
    match late.until_closed(timeout).await {
        Ended::Closed(code, reason) => {
            assert_eq!((code, reason.as_str()), (4410, "stream has completed"));
            assert!(documented.contains(&(code, reason)));
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    first.close().await;
    second.close().await;
}
