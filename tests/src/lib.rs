//! Shared helpers for the end-to-end tests: a fresh database per test on SQLite,
//! MariaDB or PostgreSQL, the real service launched in-process on port 0, and typed
//! clients holding admin or buyer tokens.
//!
//! Server URLs default to this machine's services and can be overridden with
//! `FLASH_SALE_TEST_MYSQL_URL` and `FLASH_SALE_TEST_POSTGRES_URL` (an admin connection
//! that may create and drop databases). A server that cannot be reached fails the test
//! loudly. `TEST_LOG=debug` prints the service's logs.
#![forbid(unsafe_code)]

pub mod faults;

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use flash_sale::Settings;
use flash_sale_adapter::auth::JwtAuth;
use flash_sale_app::Role;
use flash_sale_client::{
    ClientError, ErrorCode, EventCreateCmd, EventDto, FlashSaleClient, OrderDto, OrderPlaceCmd,
    PlaceOrderAnswer, ProductCreateCmd, ProductDto, StrategyDto,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;

/// Where a test's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory (the embedded default).
    Sqlite,
    /// A fresh database on the MariaDB/MySQL server.
    MariaDb,
    /// A fresh database on the PostgreSQL server.
    Postgres,
    /// MariaDB, with stock, locks and the shared cache in Redis.
    MariaDbRedis,
    /// PostgreSQL, with stock, locks and the shared cache in Redis.
    PostgresRedis,
    /// MariaDB and Redis, with async placement tasks on RocketMQ.
    MariaDbRedisRocketmq,
    /// PostgreSQL and Redis, with async placement tasks on RocketMQ.
    PostgresRedisRocketmq,
}

impl Backend {
    /// The database part.
    #[must_use]
    pub fn database(self) -> Self {
        match self {
            Self::MariaDbRedis | Self::MariaDbRedisRocketmq => Self::MariaDb,
            Self::PostgresRedis | Self::PostgresRedisRocketmq => Self::Postgres,
            other => other,
        }
    }

    /// Whether Redis is part of the stack.
    pub fn redis(self) -> bool {
        matches!(
            self,
            Self::MariaDbRedis
                | Self::PostgresRedis
                | Self::MariaDbRedisRocketmq
                | Self::PostgresRedisRocketmq
        )
    }

    /// Whether async placement tasks go through RocketMQ.
    pub fn rocketmq(self) -> bool {
        matches!(
            self,
            Self::MariaDbRedisRocketmq | Self::PostgresRedisRocketmq
        )
    }
}

/// The RocketMQ name server the tests use (`scripts/rocketmq.sh start` runs one).
pub fn rocketmq_namesrv() -> String {
    std::env::var("FLASH_SALE_TEST_ROCKETMQ_NAMESRV")
        .unwrap_or_else(|_| "127.0.0.1:9876".to_owned())
}

/// The Redis the tests use (database 1 of the machine's server by default).
pub fn redis_url() -> String {
    std::env::var("FLASH_SALE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/1".to_owned())
}

/// A Redis key prefix that belongs to one test; its keys are deleted afterwards.
pub struct TestRedis {
    /// The Redis URL.
    pub url: String,
    /// The prefix.
    pub prefix: String,
}

impl TestRedis {
    /// A fresh prefix on the test Redis (which must answer).
    pub async fn create() -> anyhow::Result<Self> {
        let url = redis_url();
        let prefix = format!("fst{}", uuid::Uuid::now_v7().simple());
        flash_sale_infrastructure::redis::Redis::connect(&url, &prefix)
            .await
            .map(|_| ())
            .with_context(|| format!("cannot reach Redis at {url}; is it running?"))?;
        Ok(Self { url, prefix })
    }

    /// A connection with this test's prefix.
    pub async fn connect(&self) -> flash_sale_infrastructure::redis::Redis {
        flash_sale_infrastructure::redis::Redis::connect(&self.url, &self.prefix)
            .await
            .expect("redis")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(redis) =
                    flash_sale_infrastructure::redis::Redis::connect(&url, &prefix).await
                {
                    let _ = redis.delete_prefix().await;
                }
            });
        })
        .join();
    }
}

/// The admin URL of the MariaDB server.
pub fn mysql_admin_url() -> String {
    std::env::var("FLASH_SALE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// The admin URL of the PostgreSQL server.
pub fn postgres_admin_url() -> String {
    std::env::var("FLASH_SALE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let base = base.rsplit_once('/').map_or(base, |(head, _)| head);
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

/// A Redis Cluster of three masters that one test starts on free loopback ports (from
/// the machine's `redis-server`), and stops and deletes afterwards.
pub struct TestCluster {
    /// The nodes' ports.
    pub ports: Vec<u16>,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts the nodes and joins them into a cluster covering every slot.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let ports = free_cluster_ports(3);
        for port in &ports {
            let node = dir.path().join(port.to_string());
            std::fs::create_dir_all(&node)?;
            let status = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(["--daemonize", "yes", "--cluster-node-timeout", "2000"])
                .arg("--cluster-config-file")
                .arg(node.join("nodes.conf"))
                .arg("--dir")
                .arg(&node)
                .arg("--logfile")
                .arg(node.join("log"))
                .status()
                .context("redis-server must be installed")?;
            anyhow::ensure!(status.success(), "redis-server did not start on {port}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let status = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .status()
            .context("redis-cli must be installed")?;
        anyhow::ensure!(status.success(), "redis-cli --cluster create failed");
        let cluster = Self { ports, dir };
        for _ in 0..50 {
            let info = std::process::Command::new("redis-cli")
                .args(["-p", &cluster.ports[0].to_string(), "cluster", "info"])
                .output()?;
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                return Ok(cluster);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("the cluster did not become ready")
    }

    /// The service's `redis.url`: every node, comma-separated.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Keys matching `pattern` on each node, by port.
    pub fn keys_per_node(&self, pattern: &str) -> Vec<(u16, usize)> {
        self.ports
            .iter()
            .map(|port| {
                let out = std::process::Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "--scan", "--pattern", pattern])
                    .output()
                    .map_or(0, |o| String::from_utf8_lossy(&o.stdout).lines().count());
                (*port, out)
            })
            .collect()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for port in &self.ports {
            let _ = std::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "shutdown", "nosave"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = &self.dir;
    }
}

/// `count` ports whose cluster bus ports (+10000) are free too.
fn free_cluster_ports(count: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    let mut candidate = 21_000 + u16::try_from(std::process::id() % 20_000).unwrap_or(0) % 20_000;
    while ports.len() < count {
        candidate = if candidate >= 40_000 {
            21_000
        } else {
            candidate + 7
        };
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(candidate) && free(candidate + 10_000) {
            ports.push(candidate);
        }
    }
    ports
}

/// A database that exists for one test and is dropped afterwards.
pub struct TestDb {
    /// The service's `database.url`.
    pub url: String,
    backend: Backend,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Creates a fresh database on `backend`.
    pub async fn create(backend: Backend) -> anyhow::Result<Self> {
        let backend = backend.database();
        let name = format!("fs_test_{}", uuid::Uuid::now_v7().simple());
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Ok(Self {
                    url,
                    backend,
                    name,
                    _dir: Some(dir),
                })
            }
            _ => {
                let admin_url = if backend == Backend::MariaDb {
                    mysql_admin_url()
                } else {
                    postgres_admin_url()
                };
                let admin = Database::connect(&admin_url).await.with_context(|| {
                    format!("cannot reach the {backend:?} server at {admin_url}; is it running?")
                })?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
                admin.close().await?;
                Ok(Self {
                    url: replace_database(&admin_url, &name),
                    backend,
                    name,
                    _dir: None,
                })
            }
        }
    }

    /// A connection to the test's database, for checking invariants from the rows.
    pub async fn connect(&self) -> anyhow::Result<DatabaseConnection> {
        Ok(Database::connect(&self.url).await?)
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, statement) = match self.backend {
            Backend::Sqlite
            | Backend::MariaDbRedis
            | Backend::PostgresRedis
            | Backend::MariaDbRedisRocketmq
            | Backend::PostgresRedisRocketmq => return,
            Backend::MariaDb => (
                mysql_admin_url(),
                format!("DROP DATABASE IF EXISTS {}", self.name),
            ),
            Backend::Postgres => (
                postgres_admin_url(),
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ),
        };
        // Drop runs outside any runtime we may block: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin.execute_unprepared(&statement).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Everything stored about one product, read straight from its rows: the ground
/// truth the invariants of DESIGN §3 are checked against.
#[derive(Debug, Clone)]
pub struct DbSnapshot {
    /// `products.stock_total`.
    pub stock_total: i64,
    /// `(bucket_no, total, available)`.
    pub buckets: Vec<(i64, i64, i64)>,
    /// Every order of the product.
    pub orders: Vec<OrderRow>,
    /// `(bucket_no, delta, reason)` of every ledger row.
    pub ledger: Vec<(i64, i64, String)>,
    /// `(user_id, used)` of every purchase-quota row.
    pub quotas: Vec<(String, i64)>,
}

/// One order row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Order id.
    pub id: String,
    /// Buyer.
    pub user_id: String,
    /// Units.
    pub quantity: i64,
    /// Status.
    pub status: String,
    /// The (main) bucket the units came from.
    pub bucket_no: i64,
    /// Every bucket the units came from, with its units (`bucket_split`, or the main
    /// bucket with the whole quantity).
    pub parts: Vec<(i64, i64)>,
    /// The buyer's idempotency key.
    pub idempotency_key: Option<String>,
}

impl OrderRow {
    /// Whether it still holds its units.
    pub fn is_live(&self) -> bool {
        self.status == "pending_payment" || self.status == "paid"
    }

    /// Units it took from `bucket`.
    pub fn units_in(&self, bucket: i64) -> i64 {
        self.parts
            .iter()
            .filter(|(b, _)| *b == bucket)
            .map(|(_, u)| *u)
            .sum()
    }
}

/// The parts of an order row: `bucket_split` (`3:1,5:1`) when set, else the whole
/// quantity from `bucket_no`.
fn order_parts(bucket_no: i64, quantity: i64, split: Option<&str>) -> Vec<(i64, i64)> {
    match split {
        Some(text) => text
            .split(',')
            .map(|part| {
                let (b, u) = part.split_once(':').expect("b:u");
                (b.parse().expect("bucket"), u.parse().expect("units"))
            })
            .collect(),
        None => vec![(bucket_no, quantity)],
    }
}

impl DbSnapshot {
    /// Σ quantity of live orders.
    pub fn held(&self) -> i64 {
        self.orders
            .iter()
            .filter(|o| o.is_live())
            .map(|o| o.quantity)
            .sum()
    }

    /// Σ available of the bucket rows.
    pub fn db_available(&self) -> i64 {
        self.buckets.iter().map(|b| b.2).sum()
    }

    /// Σ delta of the ledger rows.
    pub fn ledger_sum(&self) -> i64 {
        self.ledger.iter().map(|l| l.1).sum()
    }

    /// Units each buyer holds in live orders.
    pub fn held_by_user(&self) -> std::collections::HashMap<String, i64> {
        let mut held = std::collections::HashMap::new();
        for order in self.orders.iter().filter(|o| o.is_live()) {
            *held.entry(order.user_id.clone()).or_insert(0) += order.quantity;
        }
        held
    }

    /// Checks DESIGN §3 on the rows: no oversell, conservation, ledger truth (for the
    /// product and per bucket), quota rows equal to live holdings, no buyer over
    /// `limit`, no two orders of one buyer with one idempotency key.
    #[track_caller]
    pub fn assert_invariants(&self, limit: i64) {
        assert!(
            self.held() <= self.stock_total,
            "oversold: {} > {}",
            self.held(),
            self.stock_total
        );
        assert_eq!(
            self.db_available() + self.held(),
            self.stock_total,
            "conservation"
        );
        assert_eq!(
            self.ledger_sum(),
            self.db_available(),
            "Σ ledger = available"
        );
        for &(bucket, _, available) in &self.buckets {
            let sum: i64 = self
                .ledger
                .iter()
                .filter(|l| l.0 == bucket)
                .map(|l| l.1)
                .sum();
            assert_eq!(
                sum, available,
                "Σ ledger of bucket {bucket} = its available"
            );
            let held: i64 = self
                .orders
                .iter()
                .filter(|o| o.is_live())
                .map(|o| o.units_in(bucket))
                .sum();
            let total = self
                .buckets
                .iter()
                .find(|b| b.0 == bucket)
                .map_or(0, |b| b.1);
            assert_eq!(
                available + held,
                total,
                "bucket {bucket}: available + held = total"
            );
        }
        let held = self.held_by_user();
        for (user, units) in &held {
            assert!(*units <= limit, "{user} holds {units} > {limit}");
        }
        for (user, used) in &self.quotas {
            assert_eq!(
                *used,
                held.get(user).copied().unwrap_or(0),
                "quota row of {user}"
            );
        }
        let mut keys = std::collections::HashSet::new();
        for order in &self.orders {
            if let Some(key) = &order.idempotency_key {
                assert!(
                    keys.insert((order.user_id.clone(), key.clone())),
                    "two orders for one key"
                );
            }
        }
    }
}

/// The real service, started in-process on port 0 over a fresh database.
pub struct TestApp {
    /// The running service.
    pub app: Option<flash_sale::Application>,
    /// Its database.
    pub db: TestDb,
    /// Its Redis prefix, when the stack has Redis.
    pub redis: Option<TestRedis>,
    /// Unauthenticated client.
    pub anon: FlashSaleClient,
    /// Client with an admin token.
    pub admin: FlashSaleClient,
    auth: JwtAuth,
    secret: String,
    settings: Settings,
}

impl TestApp {
    /// Starts the service on `backend` with default test settings.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the service on `backend`, letting `tweak` adjust the settings.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_hooked(backend, tweak, Box::new(|_| {})).await
    }

    /// Starts the service on `backend` with `hook` applied to its ports (to wrap a
    /// gateway with faults).
    pub async fn spawn_hooked(
        backend: Backend,
        tweak: impl FnOnce(&mut Settings),
        hook: flash_sale::PortsHook,
    ) -> Self {
        if let Ok(level) = std::env::var("TEST_LOG") {
            flash_sale::telemetry::init(&flash_sale::config::LogSettings {
                level,
                ..Default::default()
            });
        }
        let db = TestDb::create(backend).await.expect("test database");
        let redis = if backend.redis() {
            Some(TestRedis::create().await.expect("test redis"))
        } else {
            None
        };
        let secret = format!("test-secret-{}", uuid::Uuid::now_v7().simple());
        let mut settings = Settings::default();
        settings.database.url.clone_from(&db.url);
        settings.database.max_connections = 8;
        if let Some(redis) = &redis {
            settings.redis.url.clone_from(&redis.url);
            settings.redis.key_prefix.clone_from(&redis.prefix);
        }
        if backend.rocketmq() {
            // A topic and groups of the test's own.
            let name = format!("fs_t{}", uuid::Uuid::now_v7().simple());
            settings.mq.backend = flash_sale::config::MqBackend::Rocketmq;
            settings.mq.namesrv = rocketmq_namesrv();
            settings.mq.group.clone_from(&name);
            settings.mq.topic = name;
        }
        settings.auth.jwt_secret = Some(SecretString::from(secret.clone()));
        tweak(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let app = flash_sale::launch_with(settings.clone(), listener, hook)
            .await
            .expect("service starts");
        let auth = JwtAuth::new(&SecretString::from(secret.clone()));
        let anon = FlashSaleClient::new(app.base_url());
        let admin = anon.with_token(
            auth.issue("admin-1", Role::Admin, Duration::from_hours(1))
                .expect("token"),
        );
        Self {
            app: Some(app),
            db,
            redis,
            anon,
            admin,
            auth,
            secret,
            settings,
        }
    }

    /// Stops the service and starts a new one on the same database and port
    /// settings (clients must be re-made from `anon`/`admin`, whose address changes).
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// [`TestApp::restart`], with `tweak` applied to the settings first (they stay
    /// for later restarts and siblings).
    pub async fn restart_with(&mut self, tweak: impl FnOnce(&mut Settings)) {
        tweak(&mut self.settings);
        if let Some(app) = self.app.take() {
            app.shutdown(Duration::from_secs(5))
                .await
                .expect("clean shutdown");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let app = flash_sale::launch(self.settings.clone(), listener)
            .await
            .expect("service restarts");
        self.anon = FlashSaleClient::new(app.base_url());
        self.admin = self.anon.with_token(
            self.auth
                .issue("admin-1", Role::Admin, Duration::from_hours(1))
                .expect("token"),
        );
        self.app = Some(app);
    }

    /// A second instance of the service over the same database (and Redis, when the
    /// stack has it), for multi-instance tests.
    pub async fn sibling(&self) -> flash_sale::Application {
        self.sibling_hooked(Box::new(|_| {})).await
    }

    /// [`TestApp::sibling`] with `hook` applied to its ports.
    pub async fn sibling_hooked(&self, hook: flash_sale::PortsHook) -> flash_sale::Application {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        flash_sale::launch_with(self.settings.clone(), listener, hook)
            .await
            .expect("sibling starts")
    }

    /// [`TestApp::sibling`] with `tweak` applied to a copy of the settings (another
    /// configuration, e.g. other strategy overrides).
    pub async fn sibling_with(&self, tweak: impl FnOnce(&mut Settings)) -> flash_sale::Application {
        let mut settings = self.settings.clone();
        tweak(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        flash_sale::launch(settings, listener)
            .await
            .expect("sibling starts")
    }

    /// Starts the service on `backend` with its order gateway and stock ledger behind
    /// a fault plan (see [`faults`]).
    pub async fn spawn_faulty(
        backend: Backend,
        tweak: impl FnOnce(&mut Settings),
    ) -> (Self, faults::Faults) {
        let plan = faults::Faults::new();
        let hooked = plan.clone();
        let t = Self::spawn_hooked(
            backend,
            tweak,
            Box::new(move |ports| {
                ports.orders = faults::FaultyOrders::wrap(ports.orders.clone(), &hooked);
                ports.stock = faults::FaultyLedger::wrap(ports.stock.clone(), &hooked);
            }),
        )
        .await;
        (t, plan)
    }

    /// A client of `app` acting as an admin.
    pub fn admin_of(&self, app: &flash_sale::Application) -> FlashSaleClient {
        FlashSaleClient::new(app.base_url()).with_token(self.token("admin-2", Role::Admin))
    }

    /// A client of `app` acting as buyer `user`.
    pub fn buyer_of(&self, app: &flash_sale::Application, user: &str) -> FlashSaleClient {
        FlashSaleClient::new(app.base_url()).with_token(self.token(user, Role::Buyer))
    }

    /// The product's rows, read from the database.
    pub async fn snapshot(&self, product_id: i64) -> DbSnapshot {
        let conn = self.db.connect().await.expect("connects");
        let backend = conn.get_database_backend();
        let rows = |sql: String| {
            let conn = &conn;
            async move {
                conn.query_all_raw(sea_orm::Statement::from_string(backend, sql))
                    .await
                    .expect("query")
            }
        };
        let int = |row: &sea_orm::QueryResult, col: &str| -> i64 {
            row.try_get::<i64>("", col)
                .or_else(|_| row.try_get::<i32>("", col).map(i64::from))
                .expect("integer column")
        };
        let stock_total = rows(format!(
            "SELECT stock_total FROM products WHERE id = {product_id}"
        ))
        .await
        .first()
        .map(|r| int(r, "stock_total"))
        .expect("product row");
        let buckets = rows(format!(
            "SELECT bucket_no, total, available FROM stock_buckets WHERE product_id = {product_id} ORDER BY bucket_no"
        ))
        .await
        .iter()
        .map(|r| (int(r, "bucket_no"), int(r, "total"), int(r, "available")))
        .collect();
        let orders = rows(format!(
            "SELECT id, user_id, quantity, status, bucket_no, bucket_split, idempotency_key FROM orders WHERE product_id = {product_id}"
        ))
        .await
        .iter()
        .map(|r| {
            let split: Option<String> = r.try_get("", "bucket_split").expect("split");
            OrderRow {
                id: r.try_get("", "id").expect("id"),
                user_id: r.try_get("", "user_id").expect("user"),
                quantity: int(r, "quantity"),
                status: r.try_get("", "status").expect("status"),
                bucket_no: int(r, "bucket_no"),
                parts: order_parts(int(r, "bucket_no"), int(r, "quantity"), split.as_deref()),
                idempotency_key: r.try_get("", "idempotency_key").expect("key"),
            }
        })
        .collect();
        let ledger = rows(format!(
            "SELECT bucket_no, delta, reason FROM inventory_ledger WHERE product_id = {product_id} ORDER BY id"
        ))
        .await
        .iter()
        .map(|r| (int(r, "bucket_no"), int(r, "delta"), r.try_get("", "reason").expect("reason")))
        .collect();
        let quotas = rows(format!(
            "SELECT user_id, used FROM purchase_quotas WHERE product_id = {product_id}"
        ))
        .await
        .iter()
        .map(|r| (r.try_get("", "user_id").expect("user"), int(r, "used")))
        .collect();
        conn.close().await.expect("closes");
        DbSnapshot {
            stock_total,
            buckets,
            orders,
            ledger,
            quotas,
        }
    }

    /// Cancels each of `orders` twice at once (as its buyer, 100 at a time): every
    /// answer is the cancelled order or `INVALID_STATE`.
    ///
    /// # Panics
    /// On any other answer.
    pub async fn cancel_each_twice(&self, orders: &[&OrderDto]) {
        use futures::StreamExt;
        futures::stream::iter(orders.iter().flat_map(|o| [o, o]))
            .map(|o| {
                let buyer = self.buyer(&o.user_id);
                async move { buyer.cancel(&o.id).await.map(|_| ()).map_err(|e| e.code()) }
            })
            .buffer_unordered(100)
            .collect::<Vec<_>>()
            .await
            .iter()
            .for_each(|r| {
                assert!(
                    matches!(r, Ok(()) | Err(Some(ErrorCode::InvalidState))),
                    "{r:?}"
                );
            });
    }

    /// A client for buyer `user`.
    pub fn buyer(&self, user: &str) -> FlashSaleClient {
        self.anon.with_token(self.token(user, Role::Buyer))
    }

    /// A valid token for `user` with `role`.
    pub fn token(&self, user: &str, role: Role) -> String {
        self.auth
            .issue(user, role, Duration::from_hours(1))
            .expect("token")
    }

    /// The HS256 secret the service verifies with.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Stops the service and drops its database.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown(Duration::from_secs(5))
                .await
                .expect("clean shutdown");
        }
    }
}

/// A time `minutes` from now, whole seconds.
pub fn minutes_from_now(minutes: i64) -> DateTime<Utc> {
    let now = Utc::now() + chrono::Duration::minutes(minutes);
    DateTime::from_timestamp(now.timestamp(), 0).expect("valid time")
}

/// An event running from an hour ago to a day from now.
pub fn running_event(title: &str, strategy: Option<StrategyDto>) -> EventCreateCmd {
    EventCreateCmd {
        title: title.to_owned(),
        description: Some(format!("{title} — test event")),
        starts_at: minutes_from_now(-60),
        ends_at: minutes_from_now(24 * 60),
        strategy,
    }
}

/// A product with `stock` units and `per_user_limit`.
pub fn product(title: &str, stock: i64, per_user_limit: u32) -> ProductCreateCmd {
    ProductCreateCmd {
        title: title.to_owned(),
        description: None,
        original_price: 10_000,
        flash_price: 4_999,
        stock,
        per_user_limit: Some(per_user_limit),
        bucket_count: None,
    }
}

/// An online event with one product: the usual starting point.
pub async fn online_product(
    admin: &FlashSaleClient,
    stock: i64,
    per_user_limit: u32,
) -> (EventDto, ProductDto) {
    let event = admin
        .create_event(&running_event("Sale", None))
        .await
        .expect("event");
    let product = admin
        .create_product(event.id, &product("Phone", stock, per_user_limit))
        .await
        .expect("product");
    let event = admin.event_online(event.id).await.expect("online");
    (event, product)
}

/// An online event selling with `strategy` (`None`: follow the config) with one
/// product: `stock` units, `per_user_limit`, `buckets` buckets (`None`: the default).
pub async fn sale(
    admin: &FlashSaleClient,
    strategy: Option<StrategyDto>,
    stock: i64,
    per_user_limit: u32,
    buckets: Option<u32>,
) -> (EventDto, ProductDto) {
    let event = admin
        .create_event(&running_event("Sale", strategy))
        .await
        .expect("event");
    let mut spec = product("Item", stock, per_user_limit);
    spec.bucket_count = buckets;
    let product = admin
        .create_product(event.id, &spec)
        .await
        .expect("product");
    let event = admin.event_online(event.id).await.expect("online");
    (event, product)
}

/// Sends an order of `quantity` units (with `key`, if any) again while the answer is a
/// 503 or a transport error; the answer (201 or 202), or the rejection's code.
///
/// # Panics
/// When the service stays unavailable for 100 tries, or a rejection has no envelope.
pub async fn place_until_answered(
    buyer: &FlashSaleClient,
    product_id: i64,
    quantity: u32,
    key: Option<&str>,
) -> Result<PlaceOrderAnswer, ErrorCode> {
    let cmd = OrderPlaceCmd {
        product_id,
        quantity,
    };
    for _ in 0..100 {
        match buyer.place_order(&cmd, key).await {
            Ok(answer) => return Ok(answer),
            Err(ClientError::Transport(_)) => {}
            Err(e) if e.code() == Some(ErrorCode::Unavailable) => {}
            Err(e) => return Err(e.code().unwrap_or_else(|| panic!("no envelope: {e}"))),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("still unavailable after 100 tries");
}
