//! The `/stat` poller: reads nginx's `rtmp_stat` XML every few seconds and reports
//! each live stream's ingest health (bitrate, frame rate, resolution, codecs,
//! renditions) to the control plane, which emits `quality_changed` on changes.

use std::{collections::BTreeMap, time::Duration};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use nova_proto::v1::{IngestHealth, Rendition};
use nova_runtime::shutdown;

use crate::{error::HookError, metrics::HooksMetrics, upstream::Upstream};

/// Largest /stat document read.
const MAX_STAT_BYTES: usize = 8 * 1024 * 1024;

/// One stream as `/stat` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatStream {
    /// Application name.
    pub app: String,
    /// Stream name.
    pub name: String,
    /// Incoming bits per second.
    pub bw_in: i64,
    /// Video width.
    pub width: i32,
    /// Video height.
    pub height: i32,
    /// Video frame rate.
    pub frame_rate: f64,
    /// Video codec.
    pub video_codec: String,
    /// Audio codec.
    pub audio_codec: String,
    /// Whether someone publishes it.
    pub publishing: bool,
}

/// Parses the `rtmp_stat all` XML into its streams.
pub fn parse(xml: &str) -> Result<Vec<StatStream>, roxmltree::Error> {
    let doc = roxmltree::Document::parse(xml)?;
    let child_text = |node: roxmltree::Node<'_, '_>, path: &[&str]| -> Option<String> {
        let mut current = node;
        for step in path {
            current = current.children().find(|c| c.has_tag_name(*step))?;
        }
        current.text().map(|t| t.trim().to_owned())
    };
    let mut out = Vec::new();
    for app in doc.descendants().filter(|n| n.has_tag_name("application")) {
        let app_name = child_text(app, &["name"]).unwrap_or_default();
        let Some(live) = app.children().find(|c| c.has_tag_name("live")) else {
            continue;
        };
        for stream in live.children().filter(|c| c.has_tag_name("stream")) {
            let num = |path: &[&str]| {
                child_text(stream, path)
                    .and_then(|t| t.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            out.push(StatStream {
                app: app_name.clone(),
                name: child_text(stream, &["name"]).unwrap_or_default(),
                bw_in: num(&["bw_in"]) as i64,
                width: num(&["meta", "video", "width"]) as i32,
                height: num(&["meta", "video", "height"]) as i32,
                frame_rate: num(&["meta", "video", "frame_rate"]),
                video_codec: child_text(stream, &["meta", "video", "codec"]).unwrap_or_default(),
                audio_codec: child_text(stream, &["meta", "audio", "codec"]).unwrap_or_default(),
                publishing: stream.children().any(|c| c.has_tag_name("publishing")),
            });
        }
    }
    Ok(out)
}

/// Builds one health reading per published stream of `public_app`, with renditions
/// from `abr_app` (streams named `<id>_<rendition>`) or the source alone.
pub fn health_by_stream(
    streams: &[StatStream],
    public_app: &str,
    abr_app: &str,
) -> BTreeMap<String, IngestHealth> {
    let mut out = BTreeMap::new();
    for s in streams
        .iter()
        .filter(|s| s.app == public_app && s.publishing)
    {
        if uuid::Uuid::try_parse(&s.name).is_err() {
            continue;
        }
        let mut renditions: Vec<Rendition> = streams
            .iter()
            .filter(|r| r.app == abr_app && r.publishing)
            .filter_map(|r| {
                let suffix = r.name.strip_prefix(s.name.as_str())?.strip_prefix('_')?;
                Some(rendition(suffix, r))
            })
            .collect();
        if renditions.is_empty() {
            renditions.push(rendition("src", s));
        }
        renditions.sort_by(|a, b| b.height.cmp(&a.height).then(a.name.cmp(&b.name)));
        out.insert(
            s.name.clone(),
            IngestHealth {
                bitrate_kbps: s.bw_in / 1000,
                frame_rate: s.frame_rate,
                width: s.width,
                height: s.height,
                video_codec: s.video_codec.clone(),
                audio_codec: s.audio_codec.clone(),
                report_time: None,
                renditions,
            },
        );
    }
    out
}

fn rendition(name: &str, s: &StatStream) -> Rendition {
    Rendition {
        name: name.to_owned(),
        width: s.width,
        height: s.height,
        bitrate_kbps: s.bw_in / 1000,
    }
}

/// Polls `url` every `interval` until shutdown, reporting health upstream.
pub async fn run(
    url: String,
    interval: Duration,
    apps: (String, String),
    upstream: Upstream,
    metrics: HooksMetrics,
    stop: shutdown::Signal,
) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut ticker = shutdown::Ticker::new(interval, stop);
    while ticker.tick().await {
        let xml = match fetch(&client, &url, interval).await {
            Ok(xml) => xml,
            Err(err) => {
                tracing::warn!(stat.url = %url, error = %err, "cannot read nginx /stat");
                continue;
            }
        };
        let streams = match parse(&xml) {
            Ok(streams) => streams,
            Err(err) => {
                tracing::warn!(error = %err, "nginx /stat is not valid XML");
                continue;
            }
        };
        let health = health_by_stream(&streams, &apps.0, &apps.1);
        metrics.qualities(&health.values().map(|h| h.height).collect::<Vec<_>>());
        for (id, health) in health {
            match upstream
                .report_health(format!("streams/{id}"), health)
                .await
            {
                Ok(()) | Err(HookError::Refused(_)) => {}
                Err(err) => tracing::warn!(stream.id = %id, error = %err, "health report failed"),
            }
        }
    }
}

async fn fetch(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let uri: hyper::Uri = url.parse()?;
    let response = tokio::time::timeout(timeout, client.get(uri)).await??;
    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
    let body = http_body_util::Limited::new(response.into_body(), MAX_STAT_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "01a21021-cb3c-74af-b632-184d4d21bb3f";

    fn sample() -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8" ?>
<rtmp><nginx_version>1.22.1</nginx_version><server>
<application><name>live</name><live>
  <stream><name>sk_live_secret</name><bw_in>400000</bw_in><publishing/><active/></stream>
</live></application>
<application><name>stream</name><live>
  <stream><name>{ID}</name><bw_in>352000</bw_in>
    <meta><video><width>320</width><height>180</height><frame_rate>25</frame_rate><codec>H264</codec></video>
    <audio><codec>AAC</codec></audio></meta>
    <nclients>2</nclients><publishing/><active/></stream>
  <stream><name>not-a-uuid</name><bw_in>1</bw_in><publishing/></stream>
</live></application>
<application><name>abr</name><live>
  <stream><name>{ID}_360p</name><bw_in>800000</bw_in><meta><video><width>640</width><height>360</height></video></meta><publishing/></stream>
  <stream><name>{ID}_160p</name><bw_in>200000</bw_in><meta><video><width>284</width><height>160</height></video></meta><publishing/></stream>
</live></application>
</server></rtmp>"#
        )
    }

    #[test]
    fn stat_xml_parses_into_streams() {
        let streams = parse(&sample()).unwrap();
        assert_eq!(streams.len(), 5);
        let s = streams.iter().find(|s| s.name == ID).unwrap();
        assert_eq!((s.width, s.height, s.bw_in), (320, 180, 352_000));
        assert_eq!(
            (s.video_codec.as_str(), s.audio_codec.as_str()),
            ("H264", "AAC")
        );
        assert!(s.publishing);
        assert!(parse("<rtmp><oops>").is_err());
    }

    #[test]
    fn health_covers_public_streams_with_their_renditions() {
        let streams = parse(&sample()).unwrap();
        let health = health_by_stream(&streams, "stream", "abr");
        assert_eq!(
            health.keys().collect::<Vec<_>>(),
            vec![ID],
            "only uuid streams of the public app"
        );
        let h = &health[ID];
        assert_eq!(h.bitrate_kbps, 352);
        let names: Vec<_> = h
            .renditions
            .iter()
            .map(|r| (r.name.as_str(), r.height))
            .collect();
        assert_eq!(names, vec![("360p", 360), ("160p", 160)]);

        let without_abr = health_by_stream(&streams, "stream", "none");
        assert_eq!(without_abr[ID].renditions[0].name, "src");
    }
}
