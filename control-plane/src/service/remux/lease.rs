//! The lease of a claimed remux job: renewed while the attempt runs, and the
//! backoff before a failed attempt is retried.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use uuid::Uuid;

use super::{BASE_BACKOFF, MAX_BACKOFF};
use crate::{
    db::{DbPool, remux_jobs},
    shutdown,
};

/// Renews the lease of run `version` every third of `lease` until cancelled; when
/// the run lost the job, sets `lost` and cancels the attempt.
pub(super) async fn renew(
    pool: DbPool,
    asset: Uuid,
    version: Uuid,
    lease: Duration,
    cancel: tokio_util::sync::CancellationToken,
    lost: Arc<AtomicBool>,
) {
    let mut tick = shutdown::steady(lease / 3);
    tick.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let renewed = match pool.get().await {
            Ok(mut conn) => remux_jobs::renew(&mut conn, asset, version, lease).await,
            Err(err) => {
                tracing::warn!(error = %err, "cannot renew a remux lease");
                continue;
            }
        };
        match renewed {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                cancel.cancel();
                return;
            }
            Err(err) => tracing::warn!(error = %err, "cannot renew a remux lease"),
        }
    }
}

/// Returns the delay before retry `attempts + 1`.
pub(super) fn backoff(attempts: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    let delay = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF);
    chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), chrono::Duration::seconds(2));
        assert_eq!(backoff(2), chrono::Duration::seconds(4));
        assert_eq!(backoff(3), chrono::Duration::seconds(8));
        assert_eq!(backoff(30), chrono::Duration::seconds(300));
    }
}
