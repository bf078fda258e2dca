//! Bounded waits: every wait has a deadline and says what it waited for.

use std::{
    net::{SocketAddr, TcpStream},
    thread,
    time::{Duration, Instant},
};

/// Polls `ready` every 50 ms until it returns true, or fails after `timeout` with a
/// message naming `what`.
pub fn until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Tells whether something accepts TCP connections at `addr`.
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Returns a TCP port on 127.0.0.1 that is free and stays this process's until it
/// exits, for a server that a test or the stack starts and binds later.
///
/// Asking the kernel for port 0 and binding the answer later is a race: in between,
/// another test's `bind(0)` or any outgoing connection's source port can take it (a CI
/// run lost an nginx start to `Address already in use` that way). So the port is
/// drawn outside the kernel's ephemeral range (`ip_local_port_range`), where neither
/// hands out ports, and is reserved across processes by an exclusive `flock` on
/// `$TMPDIR/nova-ports-<uid>/<port>`, held until this process exits (the descriptor is
/// close-on-exec, so a child never keeps it). A port some other program listens on
/// fails the bind check and is skipped.
pub fn free_port() -> anyhow::Result<u16> {
    ports::reserve()
}

mod ports {
    use std::{
        fs::{self, File, OpenOptions},
        net::TcpListener,
        ops::RangeInclusive,
        path::PathBuf,
        sync::Mutex,
    };

    use anyhow::Context;
    use nix::fcntl::{Flock, FlockArg};
    use rand::Rng;

    /// How many random candidates are tried before giving up.
    const ATTEMPTS: usize = 2_000;
    /// The lowest port handed out: below are well-known and registered services.
    const FLOOR: u16 = 10_000;

    /// The locks that reserve this process's ports; released when it exits.
    static HELD: Mutex<Vec<Flock<File>>> = Mutex::new(Vec::new());

    /// Reserves one port; see [`super::free_port`].
    pub(super) fn reserve() -> anyhow::Result<u16> {
        let range = candidates(ephemeral_range());
        // Per user: another user's lock files could not be opened for writing.
        let dir = std::env::temp_dir().join(format!("nova-ports-{}", nix::unistd::getuid()));
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut rng = rand::rng();
        for _ in 0..ATTEMPTS {
            let port = rng.random_range(range.clone());
            if let Some(lock) = try_lock(dir.join(port.to_string()))?
                && TcpListener::bind(("127.0.0.1", port)).is_ok()
            {
                HELD.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(lock);
                return Ok(port);
            }
        }
        anyhow::bail!("no free port in {range:?} after {ATTEMPTS} attempts")
    }

    /// Takes the lock on `path` if no other process holds it.
    fn try_lock(path: PathBuf) -> anyhow::Result<Option<Flock<File>>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        Ok(Flock::lock(file, FlockArg::LockExclusiveNonblock).ok())
    }

    /// The kernel's ephemeral port range, or Linux's default when it cannot be read.
    fn ephemeral_range() -> (u16, u16) {
        fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|text| {
                let mut it = text.split_whitespace().map(str::parse::<u16>);
                Some((it.next()?.ok()?, it.next()?.ok()?))
            })
            .unwrap_or((32_768, 60_999))
    }

    /// The larger stretch of ports above [`FLOOR`] outside the ephemeral range.
    pub(super) fn candidates((low, high): (u16, u16)) -> RangeInclusive<u16> {
        let below = FLOOR..=low.saturating_sub(1).max(FLOOR);
        let above = high.saturating_add(1).max(FLOOR)..=u16::MAX;
        let len = |r: &RangeInclusive<u16>| r.end().saturating_sub(*r.start());
        if len(&below) >= len(&above) {
            below
        } else {
            above
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn candidates_stay_outside_the_ephemeral_range() {
            assert_eq!(candidates((32_768, 60_999)), 10_000..=32_767);
            assert_eq!(candidates((15_000, 20_000)), 20_001..=65_535);
            assert_eq!(candidates((1_024, 65_535)), 10_000..=10_000);
        }

        #[test]
        fn a_reserved_port_is_never_handed_out_twice() {
            let ports: Vec<u16> = (0..200).map(|_| reserve().expect("a port")).collect();
            let mut unique = ports.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(
                unique.len(),
                ports.len(),
                "a port came back twice: {ports:?}"
            );
            let (low, high) = ephemeral_range();
            assert!(
                ports.iter().all(|p| !(low..=high).contains(p)),
                "a port inside the ephemeral range {low}-{high}: {ports:?}"
            );
        }
    }
}
