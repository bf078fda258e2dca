//! Bounded async waits for tests: poll a probe until it yields, or fail saying what
//! was awaited and what was last seen.

use std::{fmt::Debug, future::Future, time::Duration};

use tokio::time::Instant;

/// Polls `probe` every 50 ms until it returns `Ok(value)`; panics after `timeout` with
/// `what` and the last `Err` the probe returned.
pub async fn until<T, E: Debug, Fut>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Fut,
) -> T
where
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
