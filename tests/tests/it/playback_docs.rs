//! docs/playback.md's copy-paste Python signing example, run as written: the token
//! it prints plays a signed stream through real nginx-rtmp in ffprobe; one it signs
//! with networks (`nets`) plays only from them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_proto::v1::{PlaybackPolicy, StreamStatus};
use nova_tests::{
    edge::{self, call, jwt},
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    playback::{self, ffprobe, raw_status},
};

const WAIT: Duration = Duration::from_secs(20);

/// Returns the first ```python block of docs/playback.md.
fn python_example() -> String {
    let doc = std::fs::read_to_string(nova_tests::tools::workspace_root().join("docs/playback.md"))
        .unwrap();
    let start = doc.find("```python\n").unwrap() + "```python\n".len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_signing_example_of_the_docs_makes_tokens_that_play() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let api = format!("http://{}/api/v1", e.addr);
    let origin = live.nginx.origin_url();
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let id = stream.stream_id.clone();
    let created = call(
        "POST",
        &format!("{api}/signing-keys"),
        Some(&jwt("alice")),
        None,
    )
    .await;
    let kid = created.json["signing_key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, created.json["private_key_pem"].as_str().unwrap()).unwrap();
    let script = dir.path().join("sign_token.py");
    std::fs::write(&script, python_example()).unwrap();
    // Debian's interpreter with python3-cryptography (scripts/install-deps.sh), not
    // the tools venv that `make test` puts first on PATH.
    let sign = |args: &[&str]| {
        let run = tokio::process::Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(&pem)
            .args([kid.as_str(), id.as_str()])
            .args(args)
            .output();
        async move {
            let out = run
                .await
                .expect("/usr/bin/python3 runs (Debian: python3-cryptography)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }
    };
    let token = sign(&["docs-viewer", "600"]).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));

    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    let url = format!("{origin}/hls/t/{token}/{id}.m3u8");
    live.wait_for_url(&url, WAIT).await;
    assert!(ffprobe(&url).await, "ffprobe plays the Python-signed token");
    assert_eq!(raw_status(&origin, &format!("/hls/{id}.m3u8")).await, 403);
    // With networks: plays from loopback only when loopback is among them.
    let inside = sign(&["docs-viewer-2", "600", "127.0.0.0/8"]).await;
    let outside = sign(&["docs-viewer-3", "600", "203.0.113.0/24", "2001:db8::/32"]).await;
    let path = |t: &str| format!("/hls/t/{t}/{id}.m3u8");
    assert_eq!(raw_status(&origin, &path(&inside)).await, 200);
    assert_eq!(raw_status(&origin, &path(&outside)).await, 403);
    live.shutdown().await;
    e.shutdown().await.unwrap();
}
