//! The demo stream `make up` creates, with ready-to-paste broadcaster settings.

use nova_proto::v1::{CreateStreamRequest, Stream, stream_service_client::StreamServiceClient};
use tonic::{Request, transport::Endpoint};

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

/// Creates a stream owned by `demo` through the control plane at `grpc_addr`.
pub async fn create(grpc_addr: &str, token: &str) -> anyhow::Result<Demo> {
    let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))?
        .connect()
        .await?;
    let mut client = StreamServiceClient::new(channel);
    let mut request = Request::new(CreateStreamRequest {
        stream: Some(Stream {
            title: "Demo stream".into(),
            ..Default::default()
        }),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    request
        .metadata_mut()
        .insert("x-nova-principal", "demo".parse()?);
    let answer = client.create_stream(request).await?.into_inner();
    let stream = answer.stream.unwrap_or_default();
    Ok(Demo {
        name: stream.name,
        stream_id: stream.stream_id,
        key: answer.stream_key,
    })
}

/// Returns how to go live on the demo stream and where to watch it.
pub fn instructions(demo: &Demo, rtmp_url: &str, hls_url: &str) -> String {
    format!(
        "Demo stream {name} (its key is shown only now):\n\n\
         Go live with ffmpeg (a test pattern and a tone):\n  \
         ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \\\n    \
         -c:v libx264 -preset veryfast -tune zerolatency -g 30 -b:v 2500k -pix_fmt yuv420p \\\n    \
         -c:a aac -b:a 128k -f flv {rtmp_url}/{key}\n\n\
         Or with OBS: Settings → Stream → Service: Custom…\n  \
         Server:     {rtmp_url}\n  \
         Stream Key: {key}\n  \
         (Settings → Output → Output Mode: Advanced → Keyframe Interval: 1 s for the quickest start)\n\n\
         Watch (HLS, starts about 2 s after you go live):\n  \
         ffplay {hls_url}/{id}.m3u8\n",
        name = demo.name,
        key = demo.key,
        id = demo.stream_id,
    )
}
