//! Redis: the stock ledger in Lua scripts, named locks, the shared cache level and
//! the notice bus — on one Redis, or a Redis Cluster (several comma-separated URLs).
//!
//! Keys carry the configured prefix and hash tags: everything about a product's
//! quotas and records shares the product's slot (`{P:p7}:…`), and each stock bucket
//! has a slot of its own (`{P:p7:b3}`) so that a cluster spreads a hot product's
//! buckets over its nodes. Every call is bounded by a timeout and answers
//! `Unavailable` rather than hang.

mod bus;
mod cache;
mod locks;
mod placements;
mod stock_ledger;
mod tally;

use std::time::Duration;

use flash_sale_domain::Cause;
use flash_sale_domain::gateway::GatewayError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

pub use bus::RedisNoticeBus;
pub use cache::RedisSharedCache;
pub use locks::RedisLocks;
pub use placements::RedisPlacements;
pub use stock_ledger::{QueueBound, RedisStockLedger};
pub use tally::RedisTally;

/// How long one Redis call may take before it counts as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_millis(1500);

/// A connection to one Redis or to a Redis Cluster; cheap to clone (multiplexed).
#[derive(Clone)]
pub enum RedisConnection {
    /// One node, reconnecting on its own.
    Single(ConnectionManager),
    /// A cluster, routing each key to its slot's node.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A Redis (or cluster) with the project's key prefix.
#[derive(Clone)]
pub struct Redis {
    conn: RedisConnection,
    pubsub: redis::Client,
    prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("cluster", &self.is_cluster())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to `urls` (one `redis://…` URL, or several comma-separated for a
    /// cluster); every key starts with `prefix`.
    pub async fn connect(urls: &str, prefix: &str) -> RedisResult<Self> {
        let nodes: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let pubsub = redis::Client::open(nodes.first().copied().unwrap_or(urls))?;
        let conn = if nodes.len() > 1 {
            let client = ClusterClient::builder(nodes)
                .connection_timeout(CALL_TIMEOUT)
                .response_timeout(CALL_TIMEOUT)
                .retries(2)
                .build()?;
            RedisConnection::Cluster(client.get_async_connection().await?)
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CALL_TIMEOUT))
                .set_response_timeout(Some(CALL_TIMEOUT))
                .set_number_of_retries(2);
            RedisConnection::Single(
                ConnectionManager::new_with_config(pubsub.clone(), config).await?,
            )
        };
        Ok(Self {
            conn,
            pubsub,
            prefix: prefix.to_owned(),
        })
    }

    /// Whether this is a cluster (multi-slot scripts are split).
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, RedisConnection::Cluster(_))
    }

    /// A fresh handle on the shared connection.
    pub(crate) fn conn(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `call` within [`CALL_TIMEOUT`]; any failure is `Unavailable`.
    pub(crate) async fn run<T>(
        &self,
        what: &str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, GatewayError> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(GatewayError::Unavailable(Cause::with_source(
                format!("redis {what}"),
                e,
            ))),
            Err(_) => Err(GatewayError::Unavailable(
                format!("redis {what}: timed out").into(),
            )),
        }
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), GatewayError> {
        let mut conn = self.conn();
        self.run("ping", redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .map(|_| ())
    }

    /// Deletes every key under the prefix (tests and tools; `SCAN` on each node).
    pub async fn delete_prefix(&self) -> Result<u64, GatewayError> {
        let pattern = format!("*{}*", self.prefix);
        let mut deleted = 0;
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .run(
                    "scan",
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn),
                )
                .await?;
            for key in keys.iter().filter(|k| k.contains(&self.prefix)) {
                let n: u64 = self
                    .run("del", redis::cmd("DEL").arg(key).query_async(&mut conn))
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

/// `/readyz`: Redis answers a ping.
#[derive(Debug, Clone)]
pub struct RedisProbe(pub Redis);

#[async_trait::async_trait]
impl flash_sale_app::probe::Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|_| "unreachable".to_owned())
    }
}
