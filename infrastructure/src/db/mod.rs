//! Persistence with sea-orm: one connection pool, one set of migrations, and the
//! gateways, on SQLite, MariaDB/MySQL or PostgreSQL.
//!
//! SQLite allows one writer at a time. So that concurrency never surfaces as
//! `SQLITE_BUSY`, every write transaction here goes through [`Database::begin_write`],
//! which on SQLite first takes an in-process write gate and then starts an
//! `IMMEDIATE` transaction; reads run in parallel under WAL.

pub mod entity;
mod error;
mod event_gateway;
mod group_commit;
pub mod migration;
mod order_gateway;
mod order_write;
mod placement_gateway;
mod placement_rows;
mod placement_write;
mod product_gateway;
mod relay;
mod snapshot;
mod stock_rows;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use flash_sale_domain::Chain;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use error::db_error;
pub use event_gateway::SeaOrmEventGateway;
pub use order_gateway::SeaOrmOrderGateway;
pub use placement_gateway::SeaOrmPlacementGateway;
#[doc(hidden)]
pub use placement_write::consumer_lookups;
pub use product_gateway::SeaOrmProductGateway;

/// The pool's size and the time limits every connection sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Pool size.
    pub max_connections: u32,
    /// How long a statement waits for a lock: a row, a table, or (SQLite) the database.
    pub lock_timeout: Duration,
    /// How long one statement may run.
    pub statement_timeout: Duration,
    /// How long an idle or silent session lives.
    pub session_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(15),
            session_timeout: Duration::from_secs(20),
        }
    }
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs().max(1)
}

impl PoolSettings {
    /// MariaDB/MySQL: the session variables set on each new connection — those both
    /// have, then MariaDB's statement limit (MySQL has none for writes; its error is
    /// ignored).
    fn session_sql(&self) -> (String, String) {
        (
            format!(
                "SET SESSION innodb_lock_wait_timeout = {}, lock_wait_timeout = {}, \
                 wait_timeout = {}, net_read_timeout = {}, net_write_timeout = {}",
                whole_seconds(self.lock_timeout),
                whole_seconds(self.lock_timeout),
                whole_seconds(self.session_timeout),
                whole_seconds(self.session_timeout),
                whole_seconds(self.session_timeout),
            ),
            format!(
                "SET SESSION max_statement_time = {}",
                whole_seconds(self.statement_timeout)
            ),
        )
    }

    /// PostgreSQL: the run-time parameters each connection starts with.
    fn postgres_params(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| d.as_millis().max(1).to_string();
        // A silent client is found by TCP keepalives: idle, then probes.
        let idle = whole_seconds(self.session_timeout / 2);
        let interval = whole_seconds(self.session_timeout / 8);
        vec![
            ("lock_timeout", ms(self.lock_timeout)),
            ("statement_timeout", ms(self.statement_timeout)),
            (
                "idle_in_transaction_session_timeout",
                ms(self.session_timeout),
            ),
            ("tcp_keepalives_idle", idle.to_string()),
            ("tcp_keepalives_interval", interval.to_string()),
            ("tcp_keepalives_count", "3".to_owned()),
            // What `SESSION_ISOLATION` says on MySQL (PostgreSQL's own default too,
            // unless the server was configured otherwise).
            ("default_transaction_isolation", "read committed".to_owned()),
        ]
    }
}

/// MariaDB/MySQL: every transaction on the connection runs at READ COMMITTED
/// (PostgreSQL's default), which drops the gap locks that make concurrent quota
/// upserts deadlock; the write transactions ([`Database::begin_write`]) rely on it,
/// and the consistent snapshot asks for REPEATABLE READ itself. Set once per
/// connection rather than per transaction: `SET TRANSACTION` before each `BEGIN` costs
/// every write a round trip of its own.
const SESSION_ISOLATION: &str = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// Prepared statements each MySQL/MariaDB or PostgreSQL connection keeps. Group
/// commit writes multi-row statements whose text depends on the batch's size, so a
/// sale uses hundreds of statement shapes; with sqlx's default of 100 the cache
/// churned, and on MySQL every eviction sends `COM_STMT_CLOSE` (which has no reply)
/// right before the next statement: Nagle's algorithm then holds that statement until
/// the server's delayed ACK, about 40 ms, several times per batch. 512 per
/// connection holds the shapes of every write path; at the default pool size (16) an
/// instance keeps at most half of MariaDB's `max_prepared_stmt_count` (16,382 per
/// server).
const STATEMENT_CACHE: usize = 512;

/// A connection pool plus, on SQLite, the write gate.
#[derive(Clone)]
pub struct Database {
    conn: DatabaseConnection,
    write_gate: Option<Arc<Mutex<()>>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// A write transaction; on SQLite it holds the write gate until it ends.
pub struct WriteTx {
    tx: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits, then lets the next writer in.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.tx.commit().await
    }

    /// Rolls back, then lets the next writer in.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.tx.rollback().await
    }

    /// Ends the transaction explicitly, before the write gate opens (a dropped
    /// transaction only queues its rollback): commits when `result` is `Ok` and
    /// `commit_if` accepts it, rolls back otherwise.
    pub async fn finish<T>(
        self,
        result: Result<T, DbErr>,
        commit_if: impl FnOnce(&T) -> bool,
    ) -> Result<T, DbErr> {
        match result {
            Ok(value) if commit_if(&value) => {
                self.tx.commit().await?;
                Ok(value)
            }
            Ok(value) => {
                self.tx.rollback().await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = self.tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(e)
            }
        }
    }
}

impl Deref for WriteTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl Database {
    /// Connects to `url` (`sqlite:`, `mysql:` or `postgres:`) with `pool`'s size, and
    /// tells the database, on every connection it opens, how long to wait for a lock,
    /// to run a statement and to keep an idle or silent session: a session orphaned by
    /// a network partition then dies and releases its row locks within a bounded time.
    pub async fn connect(url: &str, pool: &PoolSettings) -> Result<Self, DbErr> {
        let lock_timeout = pool.lock_timeout;
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(pool.max_connections.max(1))
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            // Retire idle connections before the server's own idle timeout ends them.
            .idle_timeout(pool.session_timeout / 2)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    // Another writer holding the database is a lock like any other.
                    .busy_timeout(lock_timeout)
                    .foreign_keys(true)
            });
        let session = pool.session_sql();
        options.map_sqlx_mysql_pool_opts(move |o| {
            let session = session.clone();
            o.after_connect(move |conn, _| {
                let (both, mariadb) = session.clone();
                Box::pin(async move {
                    use sea_orm::sqlx::{AssertSqlSafe, Executor};
                    conn.execute(AssertSqlSafe(both)).await?;
                    conn.execute(SESSION_ISOLATION).await?;
                    if let Err(e) = conn.execute(AssertSqlSafe(mariadb)).await {
                        tracing::debug!(error = %Chain(&e), "no max_statement_time here (MySQL)");
                    }
                    Ok(())
                })
            })
        });
        // Keep every statement shape a sale uses prepared (see STATEMENT_CACHE).
        options.map_sqlx_mysql_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE));
        let params = pool.postgres_params();
        options.map_sqlx_postgres_opts(move |o| {
            o.options(params.clone())
                .statement_cache_capacity(STATEMENT_CACHE)
        });
        let conn = sea_orm::Database::connect(options).await?;
        let write_gate =
            (conn.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Self { conn, write_gate })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        let _gate = match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        migration::Migrator::up(&self.conn, None).await
    }

    /// The pool, for reads.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Which engine this is.
    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Starts a write transaction (see the module docs for SQLite).
    pub async fn begin_write(&self) -> Result<WriteTx, DbErr> {
        match &self.write_gate {
            Some(gate) => {
                let guard = gate.clone().lock_owned().await;
                let tx = self
                    .conn
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    })
                    .await?;
                Ok(WriteTx {
                    tx,
                    _gate: Some(guard),
                })
            }
            None => {
                // READ COMMITTED, as every connection was told when it opened
                // (`SESSION_ISOLATION`, `default_transaction_isolation`).
                let tx = self.conn.begin().await?;
                Ok(WriteTx { tx, _gate: None })
            }
        }
    }

    /// `SUM(column)` as a 64-bit integer on every engine (PostgreSQL and MySQL widen
    /// sums of BIGINT to NUMERIC/DECIMAL).
    pub fn sum_i64(&self, column: &str) -> sea_orm::sea_query::Expr {
        let sql = match self.backend() {
            DbBackend::MySql => format!("CAST(COALESCE(SUM({column}), 0) AS SIGNED)"),
            DbBackend::Postgres => format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"),
            _ => format!("COALESCE(SUM({column}), 0)"),
        };
        sea_orm::sea_query::Expr::cust(sql)
    }

    /// One page of `query` (already filtered and ordered), converted by `convert`,
    /// with the number of rows all pages hold.
    pub(crate) async fn page<E, T>(
        &self,
        query: sea_orm::Select<E>,
        page: flash_sale_domain::page::PageRequest,
        convert: impl FnMut(E::Model) -> Result<T, flash_sale_domain::gateway::GatewayError>,
    ) -> Result<flash_sale_domain::page::Page<T>, flash_sale_domain::gateway::GatewayError>
    where
        E: sea_orm::EntityTrait,
        E::Model: Sync,
    {
        use sea_orm::{PaginatorTrait, QuerySelect};
        let total = query
            .clone()
            .count(self.connection())
            .await
            .map_err(db_error)?;
        let items = query
            .offset(page.offset())
            .limit(page.limit())
            .all(self.connection())
            .await
            .map_err(db_error)?
            .into_iter()
            .map(convert)
            .collect::<Result<_, _>>()?;
        Ok(flash_sale_domain::page::Page { items, total })
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }

    /// Closes the pool.
    pub async fn close(self) -> Result<(), DbErr> {
        self.conn.close().await
    }
}

/// `/readyz`: the database answers a ping.
#[derive(Debug, Clone)]
pub struct DatabaseProbe(pub Database);

#[async_trait::async_trait]
impl flash_sale_app::probe::Probe for DatabaseProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|_| "unreachable".to_owned())
    }
}
