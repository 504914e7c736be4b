//! [`LockGateway`] in process memory: named leases with a time to live.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flash_sale_domain::gateway::{GatewayError, LockGateway, LockLease};

/// Named locks held in this process.
#[derive(Debug, Default)]
pub struct EmbeddedLocks {
    held: Mutex<HashMap<String, (String, Instant)>>,
}

impl EmbeddedLocks {
    /// No lock held.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl LockGateway for EmbeddedLocks {
    async fn try_acquire(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<LockLease>, GatewayError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if held.get(name).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        let token = uuid::Uuid::now_v7().to_string();
        held.insert(name.to_owned(), (token.clone(), now + ttl));
        Ok(Some(LockLease {
            name: name.to_owned(),
            token,
        }))
    }

    async fn renew(&self, lease: &LockLease, ttl: Duration) -> Result<bool, GatewayError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match held.get_mut(&lease.name) {
            Some((token, until)) if *token == lease.token && *until > now => {
                *until = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, lease: &LockLease) -> Result<(), GatewayError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held
            .get(&lease.name)
            .is_some_and(|(token, _)| *token == lease.token)
        {
            held.remove(&lease.name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lock_has_one_owner_until_released_or_expired() {
        let locks = EmbeddedLocks::new();
        let lease = locks
            .try_acquire("a", Duration::from_secs(5))
            .await
            .expect("ok")
            .expect("free");
        assert!(
            locks
                .try_acquire("a", Duration::from_secs(5))
                .await
                .expect("ok")
                .is_none()
        );
        let stranger = LockLease {
            name: "a".into(),
            token: "not-mine".into(),
        };
        locks.release(&stranger).await.expect("ok");
        assert!(
            locks
                .try_acquire("a", Duration::from_secs(5))
                .await
                .expect("ok")
                .is_none()
        );
        assert!(
            locks
                .renew(&lease, Duration::from_secs(5))
                .await
                .expect("ok")
        );
        assert!(
            !locks
                .renew(&stranger, Duration::from_secs(5))
                .await
                .expect("ok")
        );
        locks.release(&lease).await.expect("ok");
        assert!(
            !locks
                .renew(&lease, Duration::from_secs(5))
                .await
                .expect("ok")
        );
        assert!(
            locks
                .try_acquire("a", Duration::from_millis(1))
                .await
                .expect("ok")
                .is_some()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            locks
                .try_acquire("a", Duration::from_secs(5))
                .await
                .expect("ok")
                .is_some(),
            "expired"
        );
    }
}
