//! The demo stream `make up` creates, with ready-to-paste broadcaster settings.

use nova_proto::v1::{
    CreateStreamRequest, EndStreamRequest, ListStreamsRequest, RotateStreamKeyRequest, Stream,
    StreamStatus, stream_service_client::StreamServiceClient,
};
use tonic::{
    Request,
    transport::{Channel, Endpoint},
};

/// A stream created for the person running the stack.
#[derive(Debug)]
pub struct Demo {
    /// Resource name, `streams/<id>`.
    pub name: String,
    /// Public id.
    pub stream_id: String,
    /// The stream key (shown once).
    pub key: String,
}

/// Title of the demo stream; `make up` finds its earlier one by it.
const TITLE: &str = "Demo stream";

/// Most pages of open demo streams read before giving up (1000 streams a page).
const MAX_PAGES: usize = 100;

/// Returns the demo stream owned by `demo` through the control plane at `grpc_addr`:
/// the PENDING one an earlier `make up` created (with a fresh key, since the old one
/// was shown only once), or a new one. Every other open demo stream is ended, so
/// repeated runs leave exactly one usable demo stream. An ACTIVE or INTERRUPTED one is
/// never reused: its broadcast was cut when the stack stopped, and the reaper would
/// complete it (and kill the printed key) moments later.
pub async fn ensure(grpc_addr: &str, token: &str) -> anyhow::Result<Demo> {
    let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))?
        .connect()
        .await?;
    let mut client = StreamServiceClient::new(channel);
    let open = open_demo_streams(&mut client, token).await?;
    // Newest first: keep the newest PENDING demo stream, end the rest.
    let kept = open
        .iter()
        .find(|s| s.status() == StreamStatus::Pending)
        .cloned();
    for leftover in open {
        if kept.as_ref().is_some_and(|k| k.name == leftover.name) {
            continue;
        }
        client
            .end_stream(as_demo(
                EndStreamRequest {
                    name: leftover.name,
                },
                token,
            )?)
            .await?;
    }
    let (stream, key) = match kept {
        Some(stream) => {
            let answer = client
                .rotate_stream_key(as_demo(
                    RotateStreamKeyRequest { name: stream.name },
                    token,
                )?)
                .await?
                .into_inner();
            (answer.stream.unwrap_or_default(), answer.stream_key)
        }
        None => {
            let answer = client
                .create_stream(as_demo(
                    CreateStreamRequest {
                        stream: Some(Stream {
                            title: TITLE.into(),
                            ..Default::default()
                        }),
                    },
                    token,
                )?)
                .await?
                .into_inner();
            (answer.stream.unwrap_or_default(), answer.stream_key)
        }
    };
    Ok(Demo {
        name: stream.name,
        stream_id: stream.stream_id,
        key,
    })
}

/// Returns every open (PENDING, ACTIVE or INTERRUPTED) demo stream, newest first,
/// reading page after page.
async fn open_demo_streams(
    client: &mut StreamServiceClient<Channel>,
    token: &str,
) -> anyhow::Result<Vec<Stream>> {
    let mut found = Vec::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let page = client
            .list_streams(as_demo(
                ListStreamsRequest {
                    page_size: 1000,
                    page_token,
                    owner: "demo".into(),
                    statuses: [
                        StreamStatus::Pending,
                        StreamStatus::Active,
                        StreamStatus::Interrupted,
                    ]
                    .map(i32::from)
                    .to_vec(),
                },
                token,
            )?)
            .await?
            .into_inner();
        found.extend(page.streams.into_iter().filter(|s| s.title == TITLE));
        if page.next_page_token.is_empty() {
            return Ok(found);
        }
        page_token = page.next_page_token;
    }
    anyhow::bail!("more than {MAX_PAGES} pages of open demo streams")
}

/// Wraps `message` as a call of the admin token acting for `demo`.
fn as_demo<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    request
        .metadata_mut()
        .insert("x-nova-principal", "demo".parse()?);
    Ok(request)
}

/// Returns how to go live on the demo stream and where to watch it.
pub fn instructions(demo: &Demo, rtmp_url: &str, hls_url: &str) -> String {
    format!(
        "Demo stream {name} (its key is shown only now; the next `make up` gives this\n\
         stream a new key, or ends it and makes a new one if it went live):\n\n\
         Go live with ffmpeg (a test pattern and a tone):\n  \
         ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \\\n    \
         -c:v libx264 -preset veryfast -tune zerolatency -g 30 -b:v 2500k -pix_fmt yuv420p \\\n    \
         -c:a aac -b:a 128k -f flv {rtmp_url}/{key}\n\n\
         Or with OBS: Settings → Stream → Service: Custom…\n  \
         Server:     {rtmp_url}\n  \
         Stream Key: {key}\n  \
         (Settings → Output → Output Mode: Advanced → Keyframe Interval: 1 s for the quickest start)\n\n\
         Watch (HLS, starts about 1.5 s after you go live):\n  \
         ffplay {hls_url}/{id}.m3u8\n",
        name = demo.name,
        key = demo.key,
        id = demo.stream_id,
    )
}
