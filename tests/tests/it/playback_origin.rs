//! Signed playback enforced at the media origin (issue 13, item 3), through real
//! nginx-rtmp, ffmpeg and ffprobe: a signed stream's plain URLs are refused; a valid
//! token in the path plays HLS and DASH in an unmodified player (relative segment
//! names keep the token); every hostile path or token is refused; RTMP play needs a
//! token too; no log line carries a token.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use nova_proto::v1::{PlaybackPolicy, StreamStatus};
use nova_tests::{
    edge::{self, call, jwt},
    ffmpeg::Broadcaster,
    live::{LiveOptions, LiveStack},
    playback::{self, claims, ffprobe, raw_status, sign},
    wait,
};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_stream_plays_only_with_a_valid_token_and_refuses_every_attack() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let e = edge::start(&live.ctx, "edge-a").await;
    let api = format!("http://{}/api/v1", e.addr);
    let origin = live.nginx.origin_url();
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let (other, _) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let id = stream.stream_id.clone();
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;

    // A valid platform token plays HLS: playlist, then a segment by its relative name.
    let issued = playback::issue(&live, &stream.name, "probe-1").await;
    assert_eq!(
        issued.hls_url,
        format!("{origin}/hls/t/{}/{id}.m3u8", issued.token)
    );
    let playlist = live.wait_for_url(&issued.hls_url, WAIT).await;
    let media = nova_tests::hls::parse_media(&playlist.text()).unwrap();
    let (_, segment) = media.segments.last().unwrap().clone();
    assert!(!segment.contains('/'), "relative segment name: {segment}");
    let signed_base = format!("{origin}/hls/t/{}", issued.token);
    let got = nova_tests::http::get(&format!("{signed_base}/{segment}"))
        .await
        .unwrap();
    assert_eq!(got.status, 200);
    assert!(got.body.len() > 1000);
    // DASH: the manifest and its init segments, with the token.
    let mpd = live.wait_for_url(&issued.dash_url, WAIT).await;
    assert!(
        mpd.text().contains(&format!("{id}-init.m4v")),
        "{}",
        mpd.text()
    );
    let dash_base = format!("{origin}/dash/t/{}", issued.token);
    for init in ["m4v", "m4a"] {
        let got = nova_tests::http::get(&format!("{dash_base}/{id}-init.{init}"))
            .await
            .unwrap();
        assert_eq!(got.status, 200, "init.{init}");
        assert_eq!(
            raw_status(&origin, &format!("/dash/{id}-init.{init}")).await,
            403
        );
    }
    // Unmodified players: ffprobe on the tokenized URLs.
    assert!(
        ffprobe(&issued.hls_url).await,
        "ffprobe plays HLS with a token"
    );
    assert!(
        ffprobe(&issued.dash_url).await,
        "ffprobe plays DASH with a token"
    );

    // Plain URLs of a signed stream: refused, for every kind of file.
    for path in [
        format!("/hls/{id}.m3u8"),
        format!("/hls/{segment}"),
        format!("/dash/{id}.mpd"),
    ] {
        assert_eq!(raw_status(&origin, &path).await, 403, "{path}");
    }
    assert!(!ffprobe(&format!("{origin}/hls/{id}.m3u8")).await);

    // Another stream's token (same owner, same platform key).
    let theirs = playback::issue(&live, &other.name, "probe-2").await;
    let path = |token: &str| format!("/hls/t/{token}/{id}.m3u8");
    assert_eq!(raw_status(&origin, &path(&theirs.token)).await, 403);

    // A customer key: a token it signs plays; expired, tampered, alg=none, HS256
    // with the public key, other owner's key and a deleted key do not.
    // Bob's key first: once Alice's reached the verifier, Bob's has too.
    let bob_key = call(
        "POST",
        &format!("{api}/signing-keys"),
        Some(&jwt("bob")),
        None,
    )
    .await;
    let alice = jwt("alice");
    let created = call("POST", &format!("{api}/signing-keys"), Some(&alice), None).await;
    let kid = created.json["signing_key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pem = created.json["private_key_pem"].as_str().unwrap().to_owned();
    let public_pem = created.json["signing_key"]["public_key_pem"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = sign(&pem, &kid, &claims(&id, "customer-1", 300));
    wait::until("the new key to reach the verifier", WAIT, || async {
        match raw_status(&origin, &path(&own)).await {
            200 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    let expired = sign(&pem, &kid, &claims(&id, "customer-1", -60));
    let too_long = sign(&pem, &kid, &claims(&id, "customer-1", 3 * 24 * 3600));
    let mut parts: Vec<String> = own.split('.').map(str::to_owned).collect();
    let tampered_payload = {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let mut c = claims(&other.stream_id, "customer-1", 300);
        c["sub"] = other.stream_id.clone().into();
        URL_SAFE_NO_PAD.encode(c.to_string())
    };
    parts[1] = tampered_payload;
    let tampered = parts.join(".");
    let none = {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#));
        let body = URL_SAFE_NO_PAD.encode(claims(&id, "x", 300).to_string());
        format!("{header}.{body}.AA")
    };
    let confused = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims(&id, "x", 300),
            &jsonwebtoken::EncodingKey::from_secret(public_pem.as_bytes()),
        )
        .unwrap()
    };
    let foreign = sign(
        bob_key.json["private_key_pem"].as_str().unwrap(),
        bob_key.json["signing_key"]["id"].as_str().unwrap(),
        &claims(&id, "x", 300),
    );
    let oversized = format!(
        "{}.{}.{}",
        "a".repeat(1000),
        "b".repeat(1000),
        "c".repeat(1000)
    );
    for (name, token) in [
        ("expired", &expired),
        ("lifetime", &too_long),
        ("tampered", &tampered),
        ("alg=none", &none),
        ("HS256 with the public key", &confused),
        ("another owner's key", &foreign),
        ("oversized", &oversized),
    ] {
        assert_eq!(raw_status(&origin, &path(token)).await, 403, "{name}");
    }
    // Every byte of the path is hostile: what nginx would serve after normalising
    // the path is refused by the verifier, which reads the raw request line.
    let t = &issued.token;
    let mut statuses = Vec::new();
    for (attack, wanted) in [
        (format!("/hls/x/../t/{t}/{id}.m3u8"), 403),
        (format!("/hls/t/{t}/../t/{t}/{id}.m3u8"), 404),
        (format!("/hls/t/a.b.c/../{t}/{id}.m3u8"), 403),
        (format!("/hls/t/{t}/x/../{id}.m3u8"), 403),
        (format!("/hls/t/{t}/../../dash/t/{t}/{id}.mpd"), 404),
        (
            format!("/abr/t/{t}/{id}_480p/../../../../hls/t/{t}/{id}.m3u8"),
            403,
        ),
        (format!("/hls/t/{t}/../{id}.m3u8"), 404),
        (format!("/hls/t/{t}/%2e%2e/{id}.m3u8"), 404),
        (format!("/hls/t/{t}/{id}.m3u8/../../../../etc/passwd"), 404),
        (format!("/hls/t/{t}%2F/{id}.m3u8"), 403),
        (format!("/hls/t/{t}/{id}.m3u8%00"), 400),
        (format!("/hls/t/{t}/{}.m3u8", id.to_uppercase()), 404),
        (format!("/hls/t/{t}/x{id}.m3u8"), 404),
        (format!("/hls/t//{id}.m3u8"), 404),
        // Request lines outside the grammar: whatever their status, the access log
        // writes them as (other), never with the token.
        (format!("//hls/t/{t}/{id}.m3u8"), 403),
        (format!("/HLS/t/{t}/{id}.m3u8"), 404),
        (format!("/%68ls/t/{t}/{id}.m3u8"), 403),
    ] {
        let status = raw_status(&origin, &attack).await;
        statuses.push((attack.replace(t.as_str(), "<token>"), status, wanted));
    }
    let wrong: Vec<_> = statuses.iter().filter(|(_, s, w)| s != w).collect();
    assert!(wrong.is_empty(), "(path, status, wanted): {wrong:#?}");
    let huge = format!("/hls/t/{}.b.c/{id}.m3u8", "a".repeat(10_000));
    assert_ne!(raw_status(&origin, &huge).await, 200);

    // Deleting the key invalidates its tokens at the origin within a few seconds.
    let deleted = call(
        "DELETE",
        &format!("{api}/signing-keys/{kid}"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    let started = std::time::Instant::now();
    wait::until("the deleted key's token to be refused", WAIT, || async {
        match raw_status(&origin, &path(&own)).await {
            403 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused after {:?}",
        started.elapsed()
    );
    // The platform token still plays.
    assert_eq!(raw_status(&origin, &path(&issued.token)).await, 200);

    // The verifier counted each refusal by reason.
    let hooks = live.hooks.as_ref().unwrap().addr;
    let text = nova_tests::http::get(&format!("http://{hooks}/metrics"))
        .await
        .unwrap()
        .text();
    for reason in [
        "token_required",
        "other_stream",
        "expired",
        "lifetime",
        "invalid",
        "foreign_key",
        "oversized",
        "unknown_key",
        "malformed",
        "granted",
    ] {
        assert!(
            text.contains(&format!(
                "nova_streaming_playback_decisions_total{{result=\"{reason}\""
            )),
            "{reason}:\n{text}"
        );
    }

    // RTMP play of the signed stream needs a token too.
    let rtmp = format!(
        "rtmp://127.0.0.1:{}/stream/{id}",
        live.nginx.settings().rtmp_port
    );
    assert!(!ffprobe(&rtmp).await, "RTMP play without a token");
    assert!(
        !ffprobe(&format!("{rtmp}?token={}", theirs.token)).await,
        "RTMP play with another stream's token"
    );
    // nginx-rtmp keeps at most 256 bytes of a play's arguments and truncates a
    // JWT (about 330 bytes), so even a valid token cannot pass on_play: RTMP play
    // of signed streams stays closed (docs/playback.md).
    assert!(issued.token.len() > 256);
    assert!(
        !ffprobe(&format!("{rtmp}?token={}", issued.token)).await,
        "RTMP play with a token nginx-rtmp truncated"
    );

    // No log line of nginx or of the hooks' answers carries a token.
    let logs = live.nginx.error_log().parent().unwrap().to_owned();
    for file in ["http-access.log", "error.log", "rtmp-access.log"] {
        let text = std::fs::read_to_string(logs.join(file)).unwrap_or_default();
        for token in [&issued.token, &own, &theirs.token] {
            let signature = token.rsplit('.').next().unwrap();
            let line = text.lines().find(|l| l.contains(signature));
            assert!(line.is_none(), "{file} carries a token: {line:?}");
        }
        if file == "http-access.log" {
            assert!(text.contains("/hls/t/-/"), "{text}");
        }
    }
    live.shutdown().await;
    e.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn public_streams_keep_their_plain_urls_and_a_policy_change_reaches_the_origin() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let origin = live.nginx.origin_url();
    let (stream, key) = playback::create_stream(&live, PlaybackPolicy::Public).await;
    let id = stream.stream_id.clone();
    let _ffmpeg = Broadcaster::start(&live.publish_url(&key), Duration::from_secs(120));
    live.wait_for_status(&stream.name, StreamStatus::Active, Duration::from_secs(15))
        .await;
    live.wait_for_url(&format!("{origin}/hls/{id}.m3u8"), WAIT)
        .await;
    assert!(ffprobe(&format!("{origin}/hls/{id}.m3u8")).await);
    // A token plays a public stream too.
    let issued = playback::issue(&live, &stream.name, "p-1").await;
    let signed = format!("/hls/t/{}/{id}.m3u8", issued.token);
    wait::until(
        "the platform key to reach the verifier",
        Duration::from_secs(5),
        || async {
            match raw_status(&origin, &signed).await {
                200 => Ok(()),
                s => Err(s),
            }
        },
    )
    .await;
    // Made signed while live: the plain URL is refused within the refresh bound.
    live.streams
        .clone()
        .update_stream(nova_proto::v1::UpdateStreamRequest {
            stream: Some(nova_proto::v1::Stream {
                name: stream.name.clone(),
                playback_policy: PlaybackPolicy::Signed.into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["playback_policy".into()],
            }),
        })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    wait::until("the plain URL to be refused", WAIT, || async {
        match raw_status(&origin, &format!("/hls/{id}.m3u8")).await {
            403 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        raw_status(&origin, &format!("/hls/t/{}/{id}.m3u8", issued.token)).await,
        200
    );
    // Other names under the media folders are not served at all.
    for path in [
        "/hls/",
        "/hls/index.html",
        "/dash/x.mpd",
        "/abr/../nginx.conf",
    ] {
        assert_eq!(raw_status(&origin, path).await, 404, "{path}");
    }
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_decision_outlives_an_ingest_hooks_outage_by_at_most_its_minute() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let origin = live.nginx.origin_url();
    // No broadcast: an authorised request finds no file (404), a refused one 403, and
    // one nginx cannot ask about 500.
    let (stream, _) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let id = stream.stream_id.clone();
    let issued = playback::issue(&live, &stream.name, "outage-1").await;
    let path = format!("/hls/t/{}/{id}.m3u8", issued.token);
    // Start the outage with at least 10 s left in the minute, so the stale decision
    // is seen before its minute ends.
    wait::until(
        "a wall-clock minute with 10 s left",
        Duration::from_secs(15),
        || async {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            if now % 60 < 50 { Ok(()) } else { Err(now % 60) }
        },
    )
    .await;
    wait::until("the token to be authorised", WAIT, || async {
        match raw_status(&origin, &path).await {
            404 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    live.hooks.take().unwrap().shutdown().await.unwrap();
    assert_eq!(
        raw_status(&origin, &path).await,
        404,
        "the stale decision stands in while ingest-hooks are down"
    );
    // Within the minute's end (≤ 60 s) plus slack, the stale "yes" is gone for good.
    let stopped = std::time::Instant::now();
    wait::until(
        "the stale decision to end with its minute",
        Duration::from_secs(75),
        || async {
            match raw_status(&origin, &path).await {
                500 => Ok(()),
                s => Err(s),
            }
        },
    )
    .await;
    assert!(stopped.elapsed() < Duration::from_secs(70));
    assert_eq!(raw_status(&origin, &path).await, 500);
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_verifier_reads_rules_larger_than_grpc_s_default_limit_and_reports_their_age() {
    let mut live = LiveStack::start(LiveOptions::default()).await;
    let origin = live.nginx.origin_url();
    // 40 000 signed streams with long owner names: a GetPlaybackRules answer of
    // about 6 MiB, over tonic's default 4 MiB decoding limit.
    let mut db = live.ctx.db().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(
            "INSERT INTO streams (id, owner, title, status, key_hash, key_issued_at, created_at, \
             updated_at, playback_policy) SELECT gen_random_uuid(), repeat('o', 120) || i, 'bulk', \
             'pending', sha256(i::text::bytea), now(), now(), now(), 'signed' \
             FROM generate_series(1, 40000) AS i",
        ),
        &mut db,
    )
    .await
    .unwrap();
    // A stream created after them is known to the verifier only through a read of
    // the whole rules.
    let (stream, _) = playback::create_stream(&live, PlaybackPolicy::Signed).await;
    let issued = playback::issue(&live, &stream.name, "big-rules").await;
    let path = format!("/hls/t/{}/{}.m3u8", issued.token, stream.stream_id);
    // No broadcast: authorised means 404 (no file yet); unknown to the verifier, 403.
    wait::until("the verifier to read the large rules", WAIT, || async {
        match raw_status(&origin, &path).await {
            404 => Ok(()),
            s => Err(s),
        }
    })
    .await;
    let hooks = live.hooks.as_ref().unwrap().addr;
    let text = nova_tests::http::get(&format!("http://{hooks}/metrics"))
        .await
        .unwrap()
        .text();
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("nova_streaming_playback_rules_age_seconds "))
        .or_else(|| {
            text.lines()
                .find(|l| l.starts_with("nova_streaming_playback_rules_age_seconds{"))
                .and_then(|l| l.rsplit(' ').next())
        })
        .unwrap_or_else(|| panic!("no rules age:\n{text}"))
        .parse()
        .unwrap();
    assert!(age < 30.0, "rules {age} s old");
    live.shutdown().await;
}
