//! G8 (issue 13): what signed playback costs at the media origin. One keep-alive
//! HTTP/1.1 connection asks nginx for a live playlist and one of its segments, one
//! request at a time (`NOVA_BENCH_ORIGIN_CALLS`, default 2000 each): a public
//! stream's plain URLs are the baseline; a signed stream's tokenized URLs go through
//! `auth_request`, answered from nginx's 1 s decision cache most of the time; and
//! the first request of a fresh token (a new viewer) asks the verifier in
//! ingest-hooks, which also joins its viewer session. Public and signed requests
//! alternate (ABBA order) after an unmeasured warm-up of both, so neither row
//! profits from running second (warmer caches, a settled CPU clock) or suffers
//! from running first. Measured only.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use nova_proto::v1::{CreatePlaybackTokenRequest, CreateStreamRequest, PlaybackPolicy, Stream};
use nova_tests::{
    clients, playback,
    publisher::{Flv, PublishTask, publish},
};

use crate::{
    procstat::{env_or, summary},
    stack::BenchStack,
    table::{Row, Rows},
};

type Http = Client<HttpConnector, Empty<Bytes>>;

/// Sequential GETs of one kind: latencies (ms) of the 200 answers, how many were
/// not 200, and requests per second (of the time spent on this kind).
#[derive(Default)]
struct Timed {
    ms: Vec<f64>,
    failed: usize,
    rate: f64,
}

impl Timed {
    fn record(&mut self, status: u16, took: Duration) {
        if status == 200 {
            self.ms.push(took.as_secs_f64() * 1000.0);
        } else {
            self.failed += 1;
        }
    }

    fn p50_p99(&mut self) -> (f64, f64) {
        let (p50, _, p99, _) = summary(&mut self.ms);
        (p50, p99)
    }
}

pub async fn run(rows: &Rows) {
    let calls = env_or("ORIGIN_CALLS", 2000);
    let stack = BenchStack::start(1, 100).await;
    let mut streams = clients::streams(&stack.grpc_url, Some(&stack.token), Some("bench")).await;
    let origin = stack.nginx.origin_url();
    let rtmp = stack.nginx.rtmp_url();
    let http: Http = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();

    let mut live = Vec::new();
    for policy in [PlaybackPolicy::Public, PlaybackPolicy::Signed] {
        let created = streams
            .create_stream(CreateStreamRequest {
                stream: Some(Stream {
                    title: format!("origin {policy:?}"),
                    playback_policy: policy.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        let task = publish(&format!("{rtmp}/{}", created.stream_key))
            .await
            .expect("publish accepted")
            .spawn(Flv::fixture(), Duration::from_secs(3600));
        live.push((created.stream.unwrap(), task));
    }
    let (public, signed) = (&live[0].0, &live[1].0);
    let mut tokens = playback::client(&stack.grpc_url, &stack.token, Some("bench")).await;
    let mut issue = async |sid: String| {
        tokens
            .create_playback_token(CreatePlaybackTokenRequest {
                name: signed.name.clone(),
                ttl: None,
                session_id: sid,
                ..Default::default()
            })
            .await
            .expect("issue a playback token")
            .into_inner()
            .token
    };
    let token = issue("bench-cached".into()).await;
    let fresh_count = calls.min(500);
    let mut fresh = Vec::with_capacity(fresh_count);
    for i in 0..fresh_count {
        fresh.push(issue(format!("bench-{i}")).await);
    }

    let plain = format!("{origin}/hls/{}.m3u8", public.stream_id);
    let tokenized = |token: &str| format!("{origin}/hls/t/{token}/{}.m3u8", signed.stream_id);
    // The verifier learns a new signed stream at its next rules refresh (2 s).
    segment_of(&http, &plain).await;
    segment_of(&http, &tokenized(&token)).await;
    println!("G8: {calls} sequential requests per row, {fresh_count} fresh tokens");

    let (mut public_playlist, mut signed_playlist) =
        paired(&http, calls, &plain, &tokenized(&token)).await;
    // The segments are read just before their rows: nginx-rtmp deletes old ones.
    let public_segment = format!("{origin}/hls/{}", segment_of(&http, &plain).await);
    let signed_segment = format!(
        "{origin}/hls/t/{token}/{}",
        segment_of(&http, &tokenized(&token)).await
    );
    let (mut public_ts, mut signed_ts) =
        paired(&http, calls, &public_segment, &signed_segment).await;
    let mut first = timed(&http, fresh_count, |i| tokenized(&fresh[i])).await;

    let (base50, base99) = public_playlist.p50_p99();
    let (p50, p99) = signed_playlist.p50_p99();
    rows.push(
        Row::new(
            "G8.origin.playlist",
            "signed stream's playlist at the origin (auth_request, decision cache), p50",
            "ms",
        )
        .figure(p50)
        .baseline("public stream's playlist", base50)
        .goal("≤ 1 ms p50 added")
        .note(format!(
            "p99 {p99:.3} ms vs {base99:.3} ms; {:.0} vs {:.0} req/s; not 200: {} and {}",
            signed_playlist.rate,
            public_playlist.rate,
            signed_playlist.failed,
            public_playlist.failed
        )),
    );
    let (base50, base99) = public_ts.p50_p99();
    let (p50, p99) = signed_ts.p50_p99();
    rows.push(
        Row::new(
            "G8.origin.segment",
            "signed stream's segment at the origin (auth_request, decision cache), p50",
            "ms",
        )
        .figure(p50)
        .baseline("public stream's segment", base50)
        .goal("≤ 1 ms p50 added")
        .note(format!(
            "p99 {p99:.3} ms vs {base99:.3} ms; {:.0} vs {:.0} req/s; not 200: {} and {}",
            signed_ts.rate, public_ts.rate, signed_ts.failed, public_ts.failed
        )),
    );
    let cached50 = p50_of(&mut signed_playlist);
    let (p50, p99) = first.p50_p99();
    rows.push(
        Row::new(
            "G8.origin.new_token",
            "first request of a fresh token (verifier + viewer session join), p50",
            "ms",
        )
        .figure(p50)
        .baseline("the same playlist with a cached decision", cached50)
        .goal("(reported)")
        .note(format!(
            "p99 {p99:.3} ms; {fresh_count} tokens; not 200: {}",
            first.failed
        )),
    );
    for (_, task) in live {
        PublishTask::stop(task).await;
    }
}

fn p50_of(timed: &mut Timed) -> f64 {
    timed.p50_p99().0
}

/// GETs `url`; returns the status and the body.
async fn get(http: &Http, url: &str) -> (u16, Bytes) {
    let uri = url.parse().expect("a valid URL");
    match http.get(uri).await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let body = answer
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, body)
        }
        Err(_) => (0, Bytes::new()),
    }
}

/// Waits (at most 30 s) until the playlist at `url` lists a segment; returns the
/// newest segment's file name (relative, as nginx-rtmp writes it).
async fn segment_of(http: &Http, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(http, url).await;
        let text = String::from_utf8_lossy(&body);
        if status == 200
            && let Some(name) = text.lines().rev().find(|l| l.ends_with(".ts"))
        {
            return name.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no playable playlist at the origin within 30 s (last answer {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Requests of each URL before measuring (connection, nginx's open files and
/// decision cache, the verifier's rules), not timed.
const WARM_UP: usize = 200;

/// Times `calls` sequential GETs of `a` and of `b`, interleaved in ABBA order
/// (a b, b a, a b, …) after [`WARM_UP`] unmeasured rounds, so each sees the same
/// conditions; returns the timings of `a` and of `b`.
async fn paired(http: &Http, calls: usize, a: &str, b: &str) -> (Timed, Timed) {
    for _ in 0..WARM_UP {
        get(http, a).await;
        get(http, b).await;
    }
    let (mut ta, mut tb) = (Timed::default(), Timed::default());
    let mut busy = [Duration::ZERO; 2];
    for i in 0..calls {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let (url, timed) = if side == 0 {
                (a, &mut ta)
            } else {
                (b, &mut tb)
            };
            let at = Instant::now();
            let (status, _) = get(http, url).await;
            let took = at.elapsed();
            busy[side] += took;
            timed.record(status, took);
        }
    }
    ta.rate = calls as f64 / busy[0].as_secs_f64();
    tb.rate = calls as f64 / busy[1].as_secs_f64();
    (ta, tb)
}

/// Times `calls` sequential GETs of `url(i)`.
async fn timed(http: &Http, calls: usize, url: impl Fn(usize) -> String) -> Timed {
    let mut timed = Timed::default();
    let started = Instant::now();
    for i in 0..calls {
        let target = url(i);
        let at = Instant::now();
        let (status, _) = get(http, &target).await;
        timed.record(status, at.elapsed());
    }
    timed.rate = calls as f64 / started.elapsed().as_secs_f64();
    timed
}
