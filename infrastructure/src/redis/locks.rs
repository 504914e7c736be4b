//! [`LockGateway`] on Redis: `SET key token NX PX ttl`, renewed by compare-and-expire
//! (`renew_lock.lua`), released by compare-and-delete (`unlock.lua`), so a lock that expired and was taken by someone else is never
//! released by its former owner.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use flash_sale_domain::gateway::{GatewayError, LockGateway, LockLease};
use redis::Script;

use super::Redis;

static UNLOCK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/unlock.lua")));
static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/renew_lock.lua")));

/// Named locks shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisLocks {
    redis: Redis,
}

impl RedisLocks {
    /// Locks in `redis`.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:lock:{name}", self.redis.prefix())
    }
}

#[async_trait]
impl LockGateway for RedisLocks {
    async fn try_acquire(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<LockLease>, GatewayError> {
        let token = uuid::Uuid::now_v7().to_string();
        let mut conn = self.redis.conn();
        let answer: Option<String> = self
            .redis
            .run(
                "lock",
                redis::cmd("SET")
                    .arg(self.key(name))
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(answer.map(|_| LockLease {
            name: name.to_owned(),
            token,
        }))
    }

    async fn renew(&self, lease: &LockLease, ttl: Duration) -> Result<bool, GatewayError> {
        let mut conn = self.redis.conn();
        let renewed: i64 = self
            .redis
            .run(
                "renew lock",
                RENEW
                    .key(self.key(&lease.name))
                    .arg(&lease.token)
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(renewed == 1)
    }

    async fn release(&self, lease: &LockLease) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        let _: i64 = self
            .redis
            .run(
                "unlock",
                UNLOCK
                    .key(self.key(&lease.name))
                    .arg(&lease.token)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(())
    }
}
