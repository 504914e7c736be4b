//! Waiting for a named lock (in process or across instances) for a bounded time.

use std::time::Duration;

use flash_sale_domain::gateway::{LockGateway, LockLease};

use crate::error::AppError;

/// How often a waiter asks again.
const POLL: Duration = Duration::from_millis(5);

/// Takes `name` for `ttl`, waiting up to `patience` while someone else holds it;
/// `None` when it stayed taken.
pub(crate) async fn acquire_within(
    locks: &dyn LockGateway,
    name: &str,
    ttl: Duration,
    patience: Duration,
) -> Result<Option<LockLease>, AppError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(lease) = locks.try_acquire(name, ttl).await? {
            return Ok(Some(lease));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}
