//! Strict-enough HLS playlist parsing for tests (RFC 8216 tags we rely on).

/// A media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `#EXT-X-VERSION`.
    pub version: u32,
    /// `#EXT-X-TARGETDURATION`, seconds.
    pub target_duration: u32,
    /// `#EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// Segments: duration in seconds and URI.
    pub segments: Vec<(f64, String)>,
}

/// One variant of a master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// `BANDWIDTH`, bits per second.
    pub bandwidth: u64,
    /// `RESOLUTION` as (width, height).
    pub resolution: (u32, u32),
    /// URI of the variant's media playlist.
    pub uri: String,
}

/// Parses a media playlist; errors say which rule failed.
pub fn parse_media(text: &str) -> Result<MediaPlaylist, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("first line is not #EXTM3U".into());
    }
    let (mut version, mut target, mut sequence) = (None, None, None);
    let mut segments = Vec::new();
    let mut pending: Option<f64> = None;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            version = Some(v.parse().map_err(|_| format!("bad version {v}"))?);
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(v.parse().map_err(|_| format!("bad target duration {v}"))?);
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = Some(v.parse().map_err(|_| format!("bad media sequence {v}"))?);
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let duration = v.split(',').next().unwrap_or_default();
            pending = Some(duration.parse().map_err(|_| format!("bad EXTINF {v}"))?);
        } else if line.starts_with('#') {
            continue;
        } else {
            let duration = pending
                .take()
                .ok_or_else(|| format!("URI {line} without EXTINF"))?;
            segments.push((duration, line.to_owned()));
        }
    }
    let target_duration: u32 = target.ok_or("no #EXT-X-TARGETDURATION")?;
    for (duration, uri) in &segments {
        if duration.round() as u32 > target_duration {
            return Err(format!(
                "segment {uri} ({duration} s) exceeds the target duration {target_duration}"
            ));
        }
    }
    Ok(MediaPlaylist {
        version: version.ok_or("no #EXT-X-VERSION")?,
        target_duration,
        media_sequence: sequence.ok_or("no #EXT-X-MEDIA-SEQUENCE")?,
        segments,
    })
}

/// Parses a master playlist's variants; every variant needs BANDWIDTH and RESOLUTION.
pub fn parse_master(text: &str) -> Result<Vec<Variant>, String> {
    if text.lines().next().map(str::trim) != Some("#EXTM3U") {
        return Err("first line is not #EXTM3U".into());
    }
    let mut variants = Vec::new();
    let mut pending: Option<(u64, (u32, u32))> = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let attr = |name: &str| {
                attrs
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                    .map(str::to_owned)
            };
            let bandwidth = attr("BANDWIDTH").ok_or("variant without BANDWIDTH")?;
            let resolution = attr("RESOLUTION").ok_or("variant without RESOLUTION")?;
            let (w, h) = resolution.split_once('x').ok_or("RESOLUTION is not WxH")?;
            pending = Some((
                bandwidth.parse().map_err(|_| "bad BANDWIDTH")?,
                (
                    w.parse().map_err(|_| "bad width")?,
                    h.parse().map_err(|_| "bad height")?,
                ),
            ));
        } else if !line.starts_with('#') {
            let (bandwidth, resolution) = pending
                .take()
                .ok_or_else(|| format!("URI {line} without STREAM-INF"))?;
            variants.push(Variant {
                bandwidth,
                resolution,
                uri: line.to_owned(),
            });
        }
    }
    Ok(variants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_playlists_parse_and_bad_ones_are_named() {
        let ok = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-TARGETDURATION:2\n#EXTINF:1.000,\na-4.ts\n#EXTINF:1.960,\na-5.ts\n";
        let p = parse_media(ok).unwrap();
        assert_eq!((p.version, p.target_duration, p.media_sequence), (3, 2, 4));
        assert_eq!(p.segments[1], (1.96, "a-5.ts".to_owned()));
        assert!(
            parse_media("#EXT-X-VERSION:3\n")
                .unwrap_err()
                .contains("#EXTM3U")
        );
        assert!(
            parse_media("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n")
                .unwrap_err()
                .contains("TARGETDURATION")
        );
        let too_long = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:1\n#EXTINF:3.0,\nx.ts\n";
        assert!(parse_media(too_long).unwrap_err().contains("exceeds"));
    }

    #[test]
    fn master_playlists_need_bandwidth_and_resolution() {
        let ok = "#EXTM3U\n#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH=1328000,RESOLUTION=854x480\nx_480p/index.m3u8\n";
        assert_eq!(
            parse_master(ok).unwrap(),
            vec![Variant {
                bandwidth: 1_328_000,
                resolution: (854, 480),
                uri: "x_480p/index.m3u8".into()
            }]
        );
        assert!(parse_master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n").is_err());
    }
}
