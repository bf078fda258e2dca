//! Real ffmpeg as a broadcaster (test pattern + tone, small and cheap).

use std::{process::Stdio, time::Duration};

use tokio::process::{Child, Command};

/// A running ffmpeg publishing to an RTMP URL; killed on drop.
pub struct Broadcaster {
    /// The ffmpeg process.
    child: Child,
}

impl Broadcaster {
    /// Starts publishing a 320x180 test pattern with a tone to `url`, in real time,
    /// for at most `duration`.
    pub fn start(url: &str, duration: Duration) -> Self {
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-t", &duration.as_secs().to_string()])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
            ])
            .args(["-g", "25", "-pix_fmt", "yuv420p", "-b:v", "300k"])
            .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ffmpeg is installed (scripts/install-deps.sh)");
        Self { child }
    }

    /// Waits at most `timeout` for ffmpeg to exit; returns whether it succeeded and
    /// what it printed, or `None` if it is still running.
    pub async fn exited_within(&mut self, timeout: Duration) -> Option<(bool, String)> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()?;
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        Some((status.success(), stderr))
    }
}
