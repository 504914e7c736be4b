//! The servers a test runs on: a fresh database per test on SQLite, MariaDB or
//! PostgreSQL, a Redis key prefix of its own (or a private Redis Cluster), the
//! RocketMQ name server — each cleaned up afterwards.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

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
