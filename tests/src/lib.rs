//! Shared helpers for the end-to-end tests: a fresh database per test on SQLite,
//! MariaDB or PostgreSQL, the real service launched in-process on port 0, and typed
//! clients holding admin or buyer tokens.
//!
//! Server URLs default to this machine's services and can be overridden with
//! `FLASH_SALE_TEST_MYSQL_URL` and `FLASH_SALE_TEST_POSTGRES_URL` (an admin connection
//! that may create and drop databases). A server that cannot be reached fails the test
//! loudly. `TEST_LOG=debug` prints the service's logs.
#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use flash_sale::Settings;
use flash_sale_adapter::auth::JwtAuth;
use flash_sale_app::Role;
use flash_sale_client::{
    EventCreateCmd, EventDto, FlashSaleClient, ProductCreateCmd, ProductDto, StrategyDto,
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
            Backend::MariaDb | Backend::Postgres => {
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
            Backend::Sqlite => return,
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

/// The real service, started in-process on port 0 over a fresh database.
pub struct TestApp {
    /// The running service.
    pub app: Option<flash_sale::Application>,
    /// Its database.
    pub db: TestDb,
    /// Unauthenticated client.
    pub anon: FlashSaleClient,
    /// Client with an admin token.
    pub admin: FlashSaleClient,
    auth: JwtAuth,
    secret: String,
}

impl TestApp {
    /// Starts the service on `backend` with default test settings.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the service on `backend`, letting `tweak` adjust the settings.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        if let Ok(level) = std::env::var("TEST_LOG") {
            flash_sale::telemetry::init(&flash_sale::config::LogSettings {
                level,
                ..Default::default()
            });
        }
        let db = TestDb::create(backend).await.expect("test database");
        let secret = format!("test-secret-{}", uuid::Uuid::now_v7().simple());
        let mut settings = Settings::default();
        settings.database.url.clone_from(&db.url);
        settings.database.max_connections = 8;
        settings.auth.jwt_secret = Some(SecretString::from(secret.clone()));
        tweak(&mut settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let app = flash_sale::launch(settings, listener)
            .await
            .expect("service starts");
        let auth = JwtAuth::new(&SecretString::from(secret.clone()));
        let anon = FlashSaleClient::new(app.base_url());
        let admin = anon.with_token(
            auth.issue("admin-1", Role::Admin, Duration::from_secs(3600))
                .expect("token"),
        );
        Self {
            app: Some(app),
            db,
            anon,
            admin,
            auth,
            secret,
        }
    }

    /// A client for buyer `user`.
    pub fn buyer(&self, user: &str) -> FlashSaleClient {
        self.anon.with_token(self.token(user, Role::Buyer))
    }

    /// A valid token for `user` with `role`.
    pub fn token(&self, user: &str, role: Role) -> String {
        self.auth
            .issue(user, role, Duration::from_secs(3600))
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
