//! The shared (second) cache level: JSON under versioned keys with a jittered TTL,
//! "does not exist" as `null` with a short TTL, and one rebuilder per key across
//! instances under a lock while the others wait for its result.

use std::sync::Arc;
use std::time::Duration;

use flash_sale_domain::Chain;
use flash_sale_domain::gateway::{GatewayError, LockGateway, SharedCache};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CatalogueSettings;

/// Which level answered a miss of the in-process level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The shared cache.
    Shared,
    /// The database.
    Db,
}

/// How often waiting instances look for the rebuilt entry.
const POLL: Duration = Duration::from_millis(20);

pub(super) struct SharedLevel {
    cache: Option<Arc<dyn SharedCache>>,
    locks: Arc<dyn LockGateway>,
    ttl: Duration,
    null_ttl: Duration,
    lock_ttl: Duration,
    lock_wait: Duration,
    lock_waits: metrics::Counter,
}

/// `ttl` plus up to 20%, so entries written together do not expire together.
fn jittered(ttl: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    ttl + ttl.mul_f64(f64::from(nanos % 1000) / 5000.0)
}

impl SharedLevel {
    pub(super) fn new(
        cache: Option<Arc<dyn SharedCache>>,
        locks: Arc<dyn LockGateway>,
        settings: &CatalogueSettings,
    ) -> Self {
        Self {
            cache,
            locks,
            ttl: settings.shared_ttl,
            null_ttl: settings.null_ttl,
            lock_ttl: settings.lock_ttl,
            lock_wait: settings.lock_wait,
            lock_waits: metrics::counter!("flash_sale_cache_lock_waits_total"),
        }
    }

    /// The value of `key` from the shared level, or from `load` (the database) —
    /// stored for the others. A broken shared level is skipped, not fatal.
    pub(super) async fn get_or_load<T, F, Fut>(
        &self,
        key: &str,
        load: F,
    ) -> Result<(Option<T>, Layer), GatewayError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, GatewayError>>,
    {
        let Some(cache) = &self.cache else {
            return Ok((load().await?, Layer::Db));
        };
        if let Some(found) = self.read(cache.as_ref(), key).await {
            return Ok((found, Layer::Shared));
        }
        let lock = format!("lock:{key}");
        let lease = match self.locks.try_acquire(&lock, self.lock_ttl).await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "cache lock unavailable; loading without it");
                None
            }
        };
        if let Some(lease) = lease {
            // Someone may have rebuilt it between our miss and our lock.
            let result = match self.read(cache.as_ref(), key).await {
                Some(found) => Ok((found, Layer::Shared)),
                None => {
                    let value = load().await;
                    if let Ok(value) = &value {
                        self.write(cache.as_ref(), key, value.as_ref()).await;
                    }
                    value.map(|v| (v, Layer::Db))
                }
            };
            if let Err(e) = self.locks.release(&lease).await {
                tracing::debug!(error = %Chain(&e), "cache lock release failed; it expires");
            }
            return result;
        }
        // Another instance is rebuilding it: wait for its result, briefly.
        self.lock_waits.increment(1);
        let deadline = tokio::time::Instant::now() + self.lock_wait;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            if let Some(found) = self.read(cache.as_ref(), key).await {
                return Ok((found, Layer::Shared));
            }
        }
        Ok((load().await?, Layer::Db))
    }

    /// `Some(value)` on a hit (`Some(None)` = cached "does not exist").
    async fn read<T: DeserializeOwned>(
        &self,
        cache: &dyn SharedCache,
        key: &str,
    ) -> Option<Option<T>> {
        match cache.get(key).await {
            Ok(Some(json)) => serde_json::from_str(&json).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "shared cache unavailable; reading the database");
                None
            }
        }
    }

    async fn write<T: Serialize>(&self, cache: &dyn SharedCache, key: &str, value: Option<&T>) {
        let ttl = if value.is_some() {
            jittered(self.ttl)
        } else {
            self.null_ttl
        };
        let Ok(json) = serde_json::to_string(&value) else {
            return;
        };
        if let Err(e) = cache.put(key, &json, ttl).await {
            tracing::warn!(error = %Chain(&e), "could not fill the shared cache");
        }
    }

    pub(super) async fn delete(&self, keys: &[String]) {
        if let Some(cache) = &self.cache
            && let Err(e) = cache.delete(keys).await
        {
            tracing::warn!(error = %Chain(&e), "could not drop shared cache entries; they expire");
        }
    }
}
