//! In-process serialisation of requests that share an idempotency key, so that a
//! duplicate arriving while the first is in flight waits for it and then replays its
//! answer. Across instances the unique key on orders settles any race.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use flash_sale_domain::UserId;
use flash_sale_domain::order::IdempotencyKey;
use tokio::sync::OwnedMutexGuard;

type Key = (UserId, String);

/// One async mutex per (user, key) in use.
#[derive(Default)]
pub(crate) struct KeyLocks {
    locks: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while a request with a key runs; dropping it lets the next one in.
pub(crate) struct KeyGuard<'a> {
    owner: &'a KeyLocks,
    key: Key,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    pub(crate) async fn lock(&self, user: &UserId, key: &IdempotencyKey) -> KeyGuard<'_> {
        let key = (user.clone(), key.as_str().to_owned());
        let mutex = self
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = mutex.lock_owned().await;
        KeyGuard {
            owner: self,
            key,
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self
            .owner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map still holds it: nobody waits, forget the key.
        if locks
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            locks.remove(&self.key);
        }
    }
}
