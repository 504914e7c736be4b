//! The real `flash-sale` binary as a child process, for what only a process can
//! show: `kill -9` mid-sale, SIGTERM under load, an instance that dies while another
//! carries on. Build it first (`cargo build -p flash-sale`, which
//! `scripts/test-all.sh` does); it is found next to the test binary's directory.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use flash_sale_adapter::auth::JwtAuth;
use flash_sale_app::Role;
use flash_sale_client::FlashSaleClient;
use secrecy::SecretString;
use tokio::process::{Child, Command};

use crate::backends::{Backend, TestDb, TestRedis, rocketmq_namesrv};

/// The stores one or more nodes share, and the settings every node starts with.
pub struct NodeStores {
    /// The database.
    pub db: TestDb,
    /// The Redis prefix, when the stack has Redis.
    pub redis: Option<TestRedis>,
    auth: JwtAuth,
    vars: Vec<(String, String)>,
    logs: tempfile::TempDir,
}

/// A running `flash-sale` process.
pub struct Node {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub base_url: String,
    /// Where its logs go.
    pub log: PathBuf,
    /// One connection pool for every client of this node (building a
    /// `reqwest::Client` per buyer costs milliseconds each, and a process that is
    /// killed takes its pool's connections with it).
    http: reqwest::Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The `flash-sale` binary (or `FLASH_SALE_TEST_BINARY`): beside the running program
/// (the load tool in `target/release`), else one directory up (a test binary in
/// `target/debug/deps`).
///
/// # Panics
/// When it has not been built.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("FLASH_SALE_TEST_BINARY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the running program");
    let beside = exe.with_file_name("flash-sale");
    if beside.is_file() {
        return beside;
    }
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = dir.join("flash-sale");
    assert!(
        binary.exists(),
        "{} is missing: build it first with `cargo build -p flash-sale` (scripts/test-all.sh does)",
        binary.display()
    );
    binary
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl NodeStores {
    /// Fresh stores on `backend` (RocketMQ with a topic and groups of its own when
    /// the stack has it).
    pub async fn create(backend: Backend) -> Self {
        let db = TestDb::create(backend).await.expect("test database");
        let redis = if backend.redis() {
            Some(TestRedis::create().await.expect("test redis"))
        } else {
            None
        };
        let secret = format!("node-secret-{}", uuid::Uuid::now_v7().simple());
        let mut stores = Self {
            db,
            redis,
            auth: JwtAuth::new(&SecretString::from(secret.clone())).expect("a valid secret"),
            vars: Vec::new(),
            logs: tempfile::tempdir().expect("log dir"),
        };
        stores.set("database.url", &stores.db.url.clone());
        stores.set("auth.jwt_secret", &secret);
        stores.set("log.format", "json");
        if let Some(redis) = &stores.redis {
            let (url, prefix) = (redis.url.clone(), redis.prefix.clone());
            stores.set("redis.url", &url);
            stores.set("redis.key_prefix", &prefix);
        }
        if backend.rocketmq() {
            let name = format!("fs_n{}", uuid::Uuid::now_v7().simple());
            stores.set("mq.backend", "rocketmq");
            stores.set("mq.namesrv", &rocketmq_namesrv());
            stores.set("mq.group", &name);
            stores.set("mq.topic", &name);
        }
        stores
    }

    /// What signs the nodes' tokens.
    pub fn auth(&self) -> &JwtAuth {
        &self.auth
    }

    /// Sets `section.key` for every node started from now on.
    pub fn set(&mut self, key: &str, value: &str) {
        let var = format!("FLASH_SALE__{}", key.replace('.', "__").to_uppercase());
        self.vars.retain(|(k, _)| *k != var);
        self.vars.push((var, value.to_owned()));
    }

    /// Starts a node on a free port and waits until it answers `/healthz`.
    pub async fn start(&self) -> Node {
        let port = free_port();
        let log = self.logs.path().join(format!("node-{port}.log"));
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .env("FLASH_SALE__SERVER__BIND", format!("127.0.0.1:{port}"))
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true);
        let child = command.spawn().expect("flash-sale starts");
        let node = Node {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
        };
        node.wait_healthy(Duration::from_mins(1)).await;
        node
    }

    /// A client of `node` acting as an admin.
    pub fn admin(&self, node: &Node) -> FlashSaleClient {
        self.client(node, "admin-1", Role::Admin)
    }

    /// A client of `node` acting as buyer `user`.
    pub fn buyer(&self, node: &Node, user: &str) -> FlashSaleClient {
        self.client(node, user, Role::Buyer)
    }

    fn client(&self, node: &Node, user: &str, role: Role) -> FlashSaleClient {
        FlashSaleClient::with_http(node.http.clone(), node.base_url.clone()).with_token(
            self.auth
                .issue(user, role, Duration::from_hours(1))
                .expect("token"),
        )
    }
}

impl Node {
    async fn wait_healthy(&self, patience: Duration) {
        let client = FlashSaleClient::new(self.base_url.clone());
        let started = std::time::Instant::now();
        while started.elapsed() < patience {
            if client.healthz().await.unwrap_or(false) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "flash-sale did not answer within {patience:?}; its log:\n{}",
            self.log_text()
        );
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id (`None` once it has been waited for).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `kill -9`: the process dies at once, in the middle of whatever it was doing.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("killed");
    }

    /// SIGTERM, then waits for the process to exit; how long it took, or `None` when
    /// it was still running after `patience` (it is killed then).
    pub async fn terminate(mut self, patience: Duration) -> Option<Duration> {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM sent");
        let started = std::time::Instant::now();
        match tokio::time::timeout(patience, self.child.wait()).await {
            Ok(exit) => {
                let exit = exit.expect("exit status");
                assert!(
                    exit.success(),
                    "a graceful exit: {exit:?}\n{}",
                    self.log_text()
                );
                Some(started.elapsed())
            }
            Err(_) => None,
        }
    }
}
