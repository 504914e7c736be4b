//! Typed settings from an optional TOML file plus `FLASH_SALE__SECTION__KEY`
//! environment variables (the environment wins). Durations read like `15m`, `3s`,
//! `250ms`. Secrets are [`SecretString`]s and never printed.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use flash_sale_app::policy::OrderingConfig;
use flash_sale_domain::Strategy;
use flash_sale_domain::event::EventId;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use crate::values::{HumanDuration, SecretUrl};

mod server;
pub use server::ServerSettings;

/// `[database]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite:`, `mysql:` or `postgres:` URL (may carry a password: never printed).
    pub url: SecretUrl,
    /// Pool size.
    pub max_connections: u32,
    /// How long a statement waits for a lock — a row, a table or, on SQLite, the
    /// database (MariaDB `innodb_lock_wait_timeout` and `lock_wait_timeout`,
    /// PostgreSQL `lock_timeout`, SQLite's busy timeout).
    pub lock_timeout: HumanDuration,
    /// How long one statement may run (PostgreSQL `statement_timeout`; MariaDB
    /// `max_statement_time`).
    pub statement_timeout: HumanDuration,
    /// How long the database keeps a session that does nothing — idle inside a
    /// transaction, or whose client went silent (a network partition) — before it
    /// ends it and releases its locks (PostgreSQL
    /// `idle_in_transaction_session_timeout` and TCP keepalives; MariaDB
    /// `wait_timeout`, `net_read_timeout`, `net_write_timeout`).
    pub session_timeout: HumanDuration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new("sqlite://flash-sale.db?mode=rwc"),
            max_connections: 16,
            lock_timeout: HumanDuration(Duration::from_secs(5)),
            statement_timeout: HumanDuration(Duration::from_secs(15)),
            session_timeout: HumanDuration(Duration::from_secs(20)),
        }
    }
}

impl DatabaseSettings {
    /// The pool's settings.
    pub fn pool(&self) -> flash_sale_infrastructure::db::PoolSettings {
        flash_sale_infrastructure::db::PoolSettings {
            max_connections: self.max_connections,
            lock_timeout: self.lock_timeout.0,
            statement_timeout: self.statement_timeout.0,
            session_timeout: self.session_timeout.0,
        }
    }
}

/// `[redis]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// Empty = embedded; several comma-separated nodes = Redis Cluster (may carry a
    /// password: never printed).
    pub url: SecretUrl,
    /// Every key starts with this (several deployments can share one Redis).
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: SecretUrl::new(""),
            key_prefix: "fs".to_owned(),
        }
    }
}

/// Which task queue carries async placements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MqBackend {
    /// In-process queue with durable placement rows.
    #[default]
    Embedded,
    /// Apache RocketMQ.
    Rocketmq,
}

/// `[mq]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MqSettings {
    /// `embedded` or `rocketmq`.
    pub backend: MqBackend,
    /// RocketMQ name server.
    pub namesrv: String,
    /// Placements per consumer batch (one database transaction each).
    pub batch_size: usize,
    /// Consumer batches in progress at once. 8 × 256: their transactions overlap
    /// everything but the hot bucket row's update and the commit, so on MariaDB or
    /// PostgreSQL + Redis eight batches of 256 wrote 2.5–2.9 times what two of
    /// 128 did while a sale ran, enough to keep up with the placements accepted
    /// on one machine (docs/BENCHMARKS.md, "The consumer in parallel").
    pub consumers: usize,
    /// Whether this process consumes placements (turn off to run the consumer
    /// elsewhere).
    pub consume: bool,
    /// Tasks the embedded queue holds before new placements get 503 (with RocketMQ:
    /// tasks received and not yet consumed).
    pub queue_capacity: usize,
    /// With Redis on one node (where the reservation records the placement and a 202
    /// costs no database write, so placements can be accepted faster than orders are
    /// written): new placements get 503 `UNAVAILABLE`, nothing reserved, while the
    /// placements waiting beyond the `batch_size × consumers` being written were
    /// accepted longer ago than this. Keeps the consumers' backlog — and every
    /// placement's wait — within a bound in a sale that outruns the database, far
    /// inside the 60 s promise and the sweeper's 10 s re-run. `0s`: no bound.
    pub max_queue_lag: HumanDuration,
    /// RocketMQ topic of the placement tasks.
    pub topic: String,
    /// RocketMQ group name: `<group>-producer` and `<group>-consumer`.
    pub group: String,
    /// RocketMQ push-consumer threads.
    pub consume_threads: u32,
}

impl Default for MqSettings {
    fn default() -> Self {
        Self {
            backend: MqBackend::Embedded,
            namesrv: "127.0.0.1:9876".to_owned(),
            batch_size: 256,
            consumers: 8,
            consume: true,
            queue_capacity: 100_000,
            max_queue_lag: HumanDuration(Duration::from_secs(5)),
            topic: "flash_sale_placements".to_owned(),
            group: "flash_sale".to_owned(),
            consume_threads: 4,
        }
    }
}

/// `[ordering]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderingSettings {
    /// Strategy for events whose `strategy` is null.
    pub default_strategy: String,
    /// Event id → strategy.
    pub overrides: HashMap<String, String>,
    /// Buckets for a `buckets` product created without `bucket_count`.
    pub bucket_count: u32,
}

impl Default for OrderingSettings {
    fn default() -> Self {
        Self {
            default_strategy: "sync".to_owned(),
            overrides: HashMap::new(),
            bucket_count: 8,
        }
    }
}

impl OrderingSettings {
    /// The checked policy configuration.
    pub fn to_config(&self) -> anyhow::Result<OrderingConfig> {
        let default_strategy: Strategy = self
            .default_strategy
            .parse()
            .context("ordering.default_strategy")?;
        let mut overrides = HashMap::new();
        for (id, strategy) in &self.overrides {
            let id: i64 = id
                .trim()
                .parse()
                .with_context(|| format!("ordering.overrides: `{id}` is not an event id"))?;
            let strategy: Strategy = strategy
                .parse()
                .with_context(|| format!("ordering.overrides.{id}"))?;
            overrides.insert(EventId(id), strategy);
        }
        anyhow::ensure!(
            (1..=1024).contains(&self.bucket_count),
            "ordering.bucket_count must be between 1 and 1024"
        );
        Ok(OrderingConfig {
            default_strategy,
            overrides,
            bucket_count: self.bucket_count,
        })
    }
}

/// `[orders]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OrdersSettings {
    /// Unpaid orders expire after this.
    pub payment_timeout: HumanDuration,
}

impl Default for OrdersSettings {
    fn default() -> Self {
        Self {
            payment_timeout: HumanDuration(Duration::from_mins(15)),
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HS256 secret; none = the development secret, with a warning.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<SecretString>,
    /// Tokens whose `exp` lies further ahead than this are refused.
    pub max_token_lifetime: HumanDuration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            max_token_lifetime: HumanDuration(flash_sale_adapter::auth::DEFAULT_MAX_TOKEN_LIFETIME),
        }
    }
}

/// `[rate_limit]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Order placements per buyer per second; 0 = off.
    pub per_user_per_second: u32,
    /// Requests per client address per second; 0 = off.
    pub per_ip_per_second: u32,
}

/// `[cache]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheSettings {
    /// How long the in-process catalogue cache serves an entry.
    pub local_ttl: HumanDuration,
    /// How long "does not exist" is remembered.
    pub null_ttl: HumanDuration,
    /// How long the shared (Redis) level keeps an entry (plus up to 20% jitter).
    pub shared_ttl: HumanDuration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            local_ttl: HumanDuration(Duration::from_secs(2)),
            null_ttl: HumanDuration(Duration::from_secs(1)),
            shared_ttl: HumanDuration(Duration::from_mins(1)),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `flash_sale=debug,info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

/// Every setting of the service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[database]`.
    pub database: DatabaseSettings,
    /// `[redis]`.
    pub redis: RedisSettings,
    /// `[mq]`.
    pub mq: MqSettings,
    /// `[ordering]`.
    pub ordering: OrderingSettings,
    /// `[orders]`.
    pub orders: OrdersSettings,
    /// `[auth]`.
    pub auth: AuthSettings,
    /// `[rate_limit]`.
    pub rate_limit: RateLimitSettings,
    /// `[cache]`.
    pub cache: CacheSettings,
    /// `[stock]`.
    pub stock: StockSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// The file the settings were read from (re-read on change and on SIGHUP).
    #[serde(skip)]
    pub source: Option<std::path::PathBuf>,
}

/// `[stock]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StockSettings {
    /// A reservation or return still in progress after this long has lost its
    /// request (a crash, a lost reply): the recovery job asks the database what became
    /// of it and ends it. Longer than any request can take.
    pub recovery_after: HumanDuration,
}

impl Default for StockSettings {
    fn default() -> Self {
        Self {
            recovery_after: HumanDuration(Duration::from_secs(30)),
        }
    }
}

/// The prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "FLASH_SALE__";

impl Settings {
    /// Defaults, then `file` (when given; it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let mut settings: Self = figment.extract().context("invalid configuration")?;
        settings.ordering.to_config()?;
        settings.server.connection_limits()?;
        settings.source = file.map(Path::to_path_buf);
        Ok(settings)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
