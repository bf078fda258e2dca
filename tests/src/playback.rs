//! Private playback helpers: a PlaybackService client, tokens signed in the test the
//! way a customer's backend would, players (ffprobe, ffmpeg over RTMP) and plain
//! HTTP requests whose path is sent exactly as written.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use nova_proto::v1::{
    CreatePlaybackTokenRequest, CreatePlaybackTokenResponse, CreateStreamRequest, PlaybackPolicy,
    Stream, playback_service_client::PlaybackServiceClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::{
    clients::{self, Credentials},
    live::LiveStack,
};

/// A PlaybackService client with credentials.
pub type Playback = PlaybackServiceClient<InterceptedService<Channel, Credentials>>;

/// A PlaybackService client for `url` acting as `principal` with `token`.
pub async fn client(url: &str, token: &str, principal: Option<&str>) -> Playback {
    PlaybackServiceClient::with_interceptor(
        clients::channel(url).await,
        Credentials::new(Some(token), principal),
    )
}

/// Creates a stream owned by `alice` with `policy`; returns it and its key.
pub async fn create_stream(live: &LiveStack, policy: PlaybackPolicy) -> (Stream, String) {
    let created = live
        .streams
        .clone()
        .create_stream(CreateStreamRequest {
            stream: Some(Stream {
                title: "private".into(),
                playback_policy: policy.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("create a stream")
        .into_inner();
    (created.stream.expect("stream"), created.stream_key)
}

/// Issues a platform token for stream `name` (owned by `alice`) with session `sid`.
pub async fn issue(live: &LiveStack, name: &str, sid: &str) -> CreatePlaybackTokenResponse {
    client(&live.ctx.url(), &live.ctx.token, Some("alice"))
        .await
        .create_playback_token(CreatePlaybackTokenRequest {
            name: name.into(),
            ttl: None,
            session_id: sid.into(),
            ..Default::default()
        })
        .await
        .expect("issue a playback token")
        .into_inner()
}

/// Signs `claims` with a PKCS#8 PEM private key as key `kid` (ES256), as a
/// customer's backend would.
pub fn sign(private_pem: &str, kid: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ec_pem(private_pem.as_bytes()).expect("an EC private key"),
    )
    .expect("sign a token")
}

/// Claims of a token for stream `id` expiring `ttl` seconds from now (negative:
/// already expired).
pub fn claims(id: &str, sid: &str, ttl: i64) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    serde_json::json!({"aud": "nova-playback", "sub": id, "sid": sid, "iat": now.min(now + ttl - 10), "exp": now + ttl})
}

/// GETs `path` from `origin` (`http://host:port`) with the path sent byte for byte
/// (no client normalisation); returns the status.
pub async fn raw_status(origin: &str, path: &str) -> u16 {
    raw_status_from(origin, path, std::net::Ipv4Addr::LOCALHOST.into()).await
}

/// Like [`raw_status`], from local address `source` (any of 127.0.0.0/8 works on
/// loopback): what a viewer on another network would get.
pub async fn raw_status_from(origin: &str, path: &str, source: std::net::IpAddr) -> u16 {
    let addr = origin.trim_start_matches("http://");
    let target: std::net::SocketAddr = addr.parse().expect("origin is ip:port");
    let socket = match source {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .expect("a socket");
    socket
        .bind(std::net::SocketAddr::new(source, 0))
        .expect("bind the source address");
    let mut socket = tokio::time::timeout(Duration::from_secs(10), socket.connect(target))
        .await
        .expect("connected within 10 s")
        .expect("connect to the origin");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"))
}

/// Runs ffprobe on `url` (HLS, DASH or RTMP); returns whether it found a video
/// stream.
pub async fn ffprobe(url: &str) -> bool {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-rw_timeout", "8000000"])
        .args(["-show_entries", "stream=codec_type", "-of", "csv=p=0"])
        .arg(url)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(25), out).await {
        Ok(Ok(out)) => {
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("video")
        }
        _ => false,
    }
}

/// Plays `url` for `seconds` with ffmpeg, discarding the output.
pub fn player(url: &str, seconds: u32) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i", url])
        .args(["-t", &seconds.to_string(), "-f", "null", "-"])
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg is installed")
}

/// Reads `url` (a live HLS or DASH playlist) with ffprobe for at most `seconds`
/// (`-show_packets`, which follows a live playlist as it grows, at the stream's
/// pace), discarding what it prints: an unmodified player that keeps fetching.
pub fn reader(url: &str, seconds: u32) -> tokio::process::Child {
    tokio::process::Command::new("ffprobe")
        .args(["-hide_banner", "-v", "error", "-rw_timeout", "8000000"])
        .args(["-read_intervals", &format!("%+{seconds}")])
        .args(["-show_packets", "-of", "compact=p=0", url])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffprobe is installed")
}
