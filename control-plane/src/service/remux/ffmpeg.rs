//! The remux proper: ffmpeg's concat demuxer reads the recorded pieces in order and
//! copies them, without re-encoding, into an HLS VOD rendition (`index.m3u8`,
//! `<n>.ts`) and a `faststart` MP4 download; and the checks on what it wrote.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use nova_store::VodFile;
use tokio::{io::AsyncReadExt, process::Command};

use super::failure::{PlaylistError, RemuxError};

/// Target length of VOD segments, seconds (segments are cut at keyframes).
pub const SEGMENT_SECONDS: u32 = 2;
/// Most bytes of ffmpeg's error output kept in a failure reason.
const MAX_REASON: usize = 300;

/// Writes the concat demuxer's list of `pieces` (file names in the same folder).
pub fn concat_list(pieces: &[String]) -> String {
    let mut list = String::from("ffconcat version 1.0\n");
    for piece in pieces {
        list.push_str(&format!("file '{piece}'\n"));
    }
    list
}

/// Runs ffmpeg on the concat list `list`, writing the rendition and the download
/// into `out`; fails (with ffmpeg's own last words) on an error, after `timeout`, or
/// when `stop` fires (the process is killed).
pub async fn run(
    ffmpeg: &Path,
    list: &Path,
    out: &Path,
    timeout: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), RemuxError> {
    let mut child = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "concat", "-safe", "0", "-i"])
        .arg(list)
        .args([
            "-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy", "-f", "hls",
        ])
        .args(["-hls_time", &SEGMENT_SECONDS.to_string()])
        .args(["-hls_playlist_type", "vod", "-hls_segment_filename"])
        .arg(out.join(VodFile::SEGMENT_PATTERN))
        .arg(out.join(VodFile::PLAYLIST))
        .args(["-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy"])
        .args(["-movflags", "+faststart", "-f", "mp4"])
        .arg(out.join(VodFile::DOWNLOAD))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(RemuxError::Spawn)?;
    let mut stderr = child.stderr.take();
    let status = tokio::select! {
        status = child.wait() => status.map_err(RemuxError::Spawn)?,
        () = tokio::time::sleep(timeout) => return Err(RemuxError::Timeout(timeout.as_secs())),
        () = stop.cancelled() => return Err(RemuxError::Stopped),
    };
    if status.success() {
        return Ok(());
    }
    let mut said = String::new();
    if let Some(pipe) = stderr.as_mut() {
        let _ = pipe.read_to_string(&mut said).await;
    }
    Err(RemuxError::Ffmpeg {
        status: status.to_string(),
        said: last_words(&said),
    })
}

/// Returns the end of ffmpeg's error output, on one line, at most `MAX_REASON` bytes.
fn last_words(said: &str) -> String {
    let line = said.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut start = line.len().saturating_sub(MAX_REASON);
    while !line.is_char_boundary(start) {
        start += 1;
    }
    line[start..].to_owned()
}

/// Checks an HLS playlist is a complete VOD rendition (`#EXT-X-PLAYLIST-TYPE:VOD`,
/// `#EXT-X-ENDLIST`, at least one segment) and returns its duration (the sum of its
/// segments' `#EXTINF`) and its segment files.
pub fn check_playlist(text: &str) -> Result<(Duration, Vec<String>), PlaylistError> {
    if !text.lines().any(|l| l.trim() == "#EXT-X-PLAYLIST-TYPE:VOD") {
        return Err(PlaylistError::NotVod);
    }
    if !text.lines().any(|l| l.trim() == "#EXT-X-ENDLIST") {
        return Err(PlaylistError::NoEnd);
    }
    let mut seconds = 0f64;
    let mut segments = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(info) = line.strip_prefix("#EXTINF:") {
            let value = info.split(',').next().unwrap_or_default();
            seconds += value
                .parse::<f64>()
                .map_err(|_| PlaylistError::BadDuration(value.to_owned()))?;
        } else if !line.is_empty() && !line.starts_with('#') {
            if VodFile::parse(line).is_none() {
                return Err(PlaylistError::UnexpectedSegment(line.to_owned()));
            }
            segments.push(line.to_owned());
        }
    }
    if segments.is_empty() {
        return Err(PlaylistError::NoSegment);
    }
    Ok((Duration::from_secs_f64(seconds.max(0.0)), segments))
}

/// The files of a finished rendition in upload order: segments, the download, and
/// the playlist last.
pub fn upload_order(out: &Path, segments: &[String]) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> =
        segments.iter().map(|s| (out.join(s), s.clone())).collect();
    for name in [VodFile::DOWNLOAD, VodFile::PLAYLIST] {
        files.push((out.join(name), name.to_owned()));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vod_playlist_gives_its_duration_and_segments() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
                    #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.000000,\n0.ts\n#EXTINF:1.520000,\n1.ts\n#EXT-X-ENDLIST\n";
        let (duration, segments) = check_playlist(text).unwrap();
        assert_eq!(duration, Duration::from_millis(3520));
        assert_eq!(segments, ["0.ts", "1.ts"]);
        assert_eq!(
            check_playlist(&text.replace("#EXT-X-ENDLIST\n", "")),
            Err(PlaylistError::NoEnd)
        );
        assert_eq!(
            check_playlist(&text.replace("#EXT-X-PLAYLIST-TYPE:VOD\n", "")),
            Err(PlaylistError::NotVod)
        );
        assert_eq!(
            check_playlist(&text.replace("1.ts", "../x.ts")),
            Err(PlaylistError::UnexpectedSegment("../x.ts".into()))
        );
    }

    #[test]
    fn the_concat_list_names_each_piece_in_order() {
        assert_eq!(
            concat_list(&["0.flv".into(), "1.flv".into()]),
            "ffconcat version 1.0\nfile '0.flv'\nfile '1.flv'\n"
        );
    }

    #[test]
    fn last_words_keep_the_end_on_one_line() {
        assert_eq!(last_words("a\nb  c\n"), "a b c");
        assert!(last_words(&"é".repeat(400)).len() <= MAX_REASON);
    }
}
