//! Watches the HLS output folder and records how long each new segment took:
//! the modification time of segment N minus that of segment N-1 of the same stream
//! (`<stream id>-<N>.ts`, as nginx-rtmp names them).

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use nova_runtime::shutdown;

use crate::metrics::HooksMetrics;

/// Forget a stream after this long without new segments.
const FORGET_AFTER: Duration = Duration::from_secs(120);

/// Latest segment seen per stream.
#[derive(Default)]
pub struct SegmentClock {
    /// Stream name → (highest segment number, its modification time, last seen).
    latest: HashMap<String, (u64, SystemTime, SystemTime)>,
}

impl SegmentClock {
    /// Feeds one folder listing (file name, modification time); returns the
    /// generation times of segments that are new since the last listing.
    pub fn observe(&mut self, files: &[(String, SystemTime)], now: SystemTime) -> Vec<Duration> {
        let mut newest: HashMap<&str, (u64, SystemTime)> = HashMap::new();
        for (name, mtime) in files {
            let Some((stream, number)) = name
                .strip_suffix(".ts")
                .and_then(|n| n.rsplit_once('-'))
                .and_then(|(s, n)| Some((s, n.parse::<u64>().ok()?)))
            else {
                continue;
            };
            let entry = newest.entry(stream).or_insert((number, *mtime));
            if number > entry.0 {
                *entry = (number, *mtime);
            }
        }
        let mut out = Vec::new();
        for (stream, (number, mtime)) in newest {
            match self.latest.get_mut(stream) {
                Some((prev_n, prev_t, seen)) if number > *prev_n => {
                    let consecutive = number == *prev_n + 1;
                    if let (true, Ok(delta)) = (consecutive, mtime.duration_since(*prev_t)) {
                        out.push(delta);
                    }
                    *prev_n = number;
                    *prev_t = mtime;
                    *seen = now;
                }
                Some((_, _, seen)) => *seen = now,
                None => {
                    self.latest.insert(stream.to_owned(), (number, mtime, now));
                }
            }
        }
        self.latest
            .retain(|_, (_, _, seen)| now.duration_since(*seen).unwrap_or_default() < FORGET_AFTER);
        out
    }
}

/// Lists `dir` every `interval` until shutdown, recording new segments.
pub async fn run(dir: PathBuf, interval: Duration, metrics: HooksMetrics, stop: shutdown::Signal) {
    let mut clock = SegmentClock::default();
    let mut ticker = shutdown::Ticker::new(interval, stop);
    while ticker.tick().await {
        let listing = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || list(&dir)).await
        };
        if let Ok(Ok(files)) = listing {
            for delta in clock.observe(&files, SystemTime::now()) {
                metrics.segment(delta);
            }
        }
    }
}

fn list(dir: &PathBuf) -> std::io::Result<Vec<(String, SystemTime)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".ts") {
            continue;
        }
        if let Ok(mtime) = entry.metadata().and_then(|m| m.modified()) {
            out.push((name, mtime));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_consecutive_segments_yield_their_generation_time() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut clock = SegmentClock::default();
        let first = [
            ("a-3.ts".to_owned(), at(1000)),
            ("a-2.ts".to_owned(), at(0)),
        ];
        assert!(
            clock.observe(&first, at(1000)).is_empty(),
            "the first listing is the baseline"
        );
        let next = [
            ("a-3.ts".to_owned(), at(1000)),
            ("a-4.ts".to_owned(), at(2200)),
            ("x.m3u8".to_owned(), at(2200)),
        ];
        assert_eq!(
            clock.observe(&next, at(2300)),
            vec![Duration::from_millis(1200)]
        );
        // A jump (missed listing) gives no figure rather than a wrong one.
        assert!(
            clock
                .observe(&[("a-7.ts".to_owned(), at(6000))], at(6000))
                .is_empty()
        );
    }
}
