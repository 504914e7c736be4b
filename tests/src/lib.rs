//! Shared helpers for the end-to-end tests: a fresh database per test on SQLite,
//! MariaDB or PostgreSQL, the real service launched in-process on port 0, and typed
//! clients holding admin or buyer tokens.
//!
//! Server URLs default to this machine's services and can be overridden with
//! `FLASH_SALE_TEST_MYSQL_URL` and `FLASH_SALE_TEST_POSTGRES_URL` (an admin connection
//! that may create and drop databases). A server that cannot be reached fails the test
//! loudly. `TEST_LOG=debug` prints the service's logs.
#![forbid(unsafe_code)]

mod backends;
pub mod faults;
mod fixtures;
pub mod node;
pub mod proxy;
mod snapshot;
pub mod sse;

pub use backends::*;
pub use fixtures::*;
pub use snapshot::{DbSnapshot, OrderRow};

use std::time::Duration;

use flash_sale::Settings;
use flash_sale::config::SecretUrl;
use flash_sale_adapter::auth::JwtAuth;
use flash_sale_app::Role;
use flash_sale_client::{ErrorCode, FlashSaleClient, OrderDto};
use secrecy::SecretString;

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
        settings.database.url = SecretUrl::new(db.url.as_str());
        settings.database.max_connections = 8;
        if let Some(redis) = &redis {
            settings.redis.url = SecretUrl::new(redis.url.as_str());
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
        let auth = JwtAuth::new(&SecretString::from(secret.clone())).expect("a valid secret");
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
                ports.placements =
                    faults::FaultyPlacements::wrap(ports.placements.clone(), &hooked);
                ports.queue = faults::FaultyQueue::wrap(ports.queue.clone(), &hooked);
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
        self.db.snapshot(product_id).await
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
