//! Wiring: the one place that knows which implementation backs each port.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use flash_sale_adapter::auth::{DEVELOPMENT_SECRET, JwtAuth};
use flash_sale_adapter::jobs::ConsumerSettings;
use flash_sale_adapter::rate_limit::RateLimits;
use flash_sale_adapter::{AppState, Shared, router};
use flash_sale_app::catalogue::CatalogueSettings;
use flash_sale_app::policy::OrderingPolicy;
use flash_sale_app::probe::Probe;
use flash_sale_app::{Executors, Ports};
use flash_sale_infrastructure::clock::SystemClock;
use flash_sale_infrastructure::db::{
    Database, DatabaseProbe, SeaOrmEventGateway, SeaOrmOrderGateway, SeaOrmPlacementGateway,
    SeaOrmProductGateway,
};
use flash_sale_infrastructure::embedded::{
    EmbeddedLocks, EmbeddedStockLedger, EmbeddedTally, EmbeddedTaskQueue,
};
use flash_sale_infrastructure::redis::{
    QueueBound, Redis, RedisLocks, RedisNoticeBus, RedisPlacements, RedisProbe, RedisSharedCache,
    RedisStockLedger, RedisTally,
};
use flash_sale_infrastructure::rocketmq::{RocketMqSettings, RocketMqTaskQueue};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::{MqBackend, Settings};

/// A running service.
pub struct Application {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    jobs: Vec<JoinHandle<()>>,
    db: Database,
    broker: Option<Arc<RocketMqTaskQueue>>,
    exec: Arc<Executors>,
    writes: TaskTracker,
}

impl Application {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every use case, for jobs and tests that act without HTTP.
    pub fn executors(&self) -> &Arc<Executors> {
        &self.exec
    }

    /// Writes running to completion in tasks of their own right now.
    pub fn writes_in_progress(&self) -> usize {
        self.writes.len()
    }

    /// Stops accepting, lets in-flight requests, detached writes whose client went
    /// away and the consumer's batch in progress finish, stops the jobs and closes the
    /// pool — all within `timeout` in total; what is still running then is dropped
    /// (every write is durable or not, and the recovery job ends what it left).
    pub async fn shutdown(self, timeout: std::time::Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let _ = self.stop.send(true);
        let mut server = self.server;
        match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(joined) => joined.context("server task")?.context("server")?,
            Err(_) => {
                tracing::warn!("in-flight requests did not finish in time");
                server.abort();
            }
        }
        self.writes.close();
        if tokio::time::timeout_at(deadline, self.writes.wait())
            .await
            .is_err()
        {
            tracing::warn!(writes = self.writes.len(), "writes did not finish in time");
        }
        for mut job in self.jobs {
            if tokio::time::timeout_at(deadline, &mut job).await.is_err() {
                tracing::warn!("a background job did not stop in time");
                job.abort();
            }
        }
        if let Some(broker) = self.broker {
            let _ = tokio::time::timeout_at(deadline, broker.shutdown()).await;
        }
        match tokio::time::timeout_at(deadline, self.db.close()).await {
            Ok(closed) => closed.context("closing the database pool")?,
            Err(_) => tracing::warn!("the database pool did not close in time"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The JWT secret from the settings, or the development secret with a warning.
pub fn jwt_secret(settings: &Settings) -> SecretString {
    settings.auth.jwt_secret.clone().unwrap_or_else(|| {
        tracing::warn!(
            "auth.jwt_secret is not set: using the built-in DEVELOPMENT secret; \
             anyone can mint tokens for this instance. Set FLASH_SALE__AUTH__JWT_SECRET."
        );
        SecretString::from(DEVELOPMENT_SECRET.to_owned())
    })
}

/// Every port: the databases' gateways, and the embedded implementations or the
/// Redis ones when Redis is configured.
fn ports(settings: &Settings, db: &Database, redis: Option<&Redis>) -> Ports {
    let mut ports = Ports {
        events: Arc::new(SeaOrmEventGateway::new(db.clone())),
        products: Arc::new(SeaOrmProductGateway::new(db.clone())),
        orders: Arc::new(SeaOrmOrderGateway::new(db.clone())),
        placements: Arc::new(SeaOrmPlacementGateway::new(db.clone())),
        queue: Arc::new(EmbeddedTaskQueue::new(settings.mq.queue_capacity)),
        stock: Arc::new(EmbeddedStockLedger::new()),
        locks: Arc::new(EmbeddedLocks::new()),
        shared_cache: None,
        bus: None,
        tally: Arc::new(EmbeddedTally::default()),
        clock: Arc::new(SystemClock),
    };
    if let Some(redis) = redis {
        ports.stock = Arc::new(
            RedisStockLedger::new(redis.clone()).with_queue_bound(QueueBound {
                max_lag: settings.mq.max_queue_lag.0,
                in_flight: settings.mq.batch_size.max(1) * settings.mq.consumers.max(1),
            }),
        );
        ports.locks = Arc::new(RedisLocks::new(redis.clone()));
        ports.shared_cache = Some(Arc::new(RedisSharedCache::new(redis.clone())));
        ports.bus = Some(Arc::new(RedisNoticeBus::new(redis.clone())));
        ports.tally = Arc::new(RedisTally::new(redis.clone()));
        // On one node the reservation script records a placement beside its hold (the
        // ledger says so); the placements are read from there until they resolve.
        if ports.stock.records_placements() {
            ports.placements = Arc::new(RedisPlacements::new(
                redis.clone(),
                SeaOrmPlacementGateway::new(db.clone()),
            ));
        }
    }
    ports
}

/// The RocketMQ client, when `mq.backend = "rocketmq"`.
async fn start_broker(settings: &Settings) -> anyhow::Result<Option<Arc<RocketMqTaskQueue>>> {
    if settings.mq.backend != MqBackend::Rocketmq {
        return Ok(None);
    }
    let queue = RocketMqTaskQueue::start(&RocketMqSettings {
        namesrv: settings.mq.namesrv.clone(),
        topic: settings.mq.topic.clone(),
        group: settings.mq.group.clone(),
        consume_threads: settings.mq.consume_threads,
        batch_size: u32::try_from(settings.mq.batch_size).unwrap_or(u32::MAX),
        consume: settings.mq.consume,
        capacity: settings.mq.queue_capacity,
    })
    .await
    .context("connecting to RocketMQ")?;
    tracing::info!(namesrv = %settings.mq.namesrv, topic = %settings.mq.topic, "placement tasks go through RocketMQ");
    Ok(Some(Arc::new(queue)))
}

/// The async consumer and the placement sweeper.
fn spawn_consumer_jobs(
    settings: &Settings,
    exec: &Arc<Executors>,
    stop: &watch::Sender<bool>,
) -> Vec<JoinHandle<()>> {
    let mut jobs = flash_sale_adapter::jobs::spawn_consumer(
        exec,
        ConsumerSettings {
            batch_size: settings.mq.batch_size.max(1),
            workers: settings.mq.consumers.max(1),
            drain_timeout: settings.server.shutdown_timeout.0,
        },
        &stop.subscribe(),
    );
    jobs.push(flash_sale_adapter::jobs::spawn_sweeper(
        exec.clone(),
        settings.mq.batch_size.max(1),
        stop.subscribe(),
    ));
    jobs
}

/// Every background job: expiry, warm-up and reconcile, recovery, housekeeping; the
/// consumer and its sweeper (when this process consumes); the config reload (when
/// there is a file); the notice subscription (with Redis).
fn spawn_jobs(
    settings: &Settings,
    exec: &Arc<Executors>,
    limits: Arc<RateLimits>,
    redis: Option<&Redis>,
    stop: &watch::Sender<bool>,
) -> Vec<JoinHandle<()>> {
    let mut jobs = vec![
        flash_sale_adapter::jobs::spawn_expiry(exec.clone(), stop.subscribe()),
        flash_sale_adapter::jobs::spawn_warm_up(exec.clone(), stop.subscribe()),
        flash_sale_adapter::jobs::spawn_recovery(exec.clone(), stop.subscribe()),
        flash_sale_adapter::jobs::spawn_housekeeping(limits, stop.subscribe()),
        flash_sale_adapter::jobs::spawn_attempt_flush(exec.clone(), stop.subscribe()),
        flash_sale_adapter::jobs::spawn_console_feed(exec.clone(), stop.subscribe()),
    ];
    if settings.mq.consume {
        jobs.extend(spawn_consumer_jobs(settings, exec, stop));
    }
    if let Some(source) = &settings.source {
        jobs.push(crate::reload::spawn_config_reload(
            source.clone(),
            exec.clone(),
            stop.subscribe(),
        ));
    }
    if let Some(redis) = redis {
        let exec = exec.clone();
        jobs.push(RedisNoticeBus::new(redis.clone()).subscribe(
            move |notice| {
                let exec = exec.clone();
                async move { exec.apply_notice(notice).await }
            },
            stop.subscribe(),
        ));
    }
    jobs
}

/// Lets a caller wrap or replace ports before the service is built (tests inject
/// faults this way).
pub type PortsHook = Box<dyn FnOnce(&mut Ports) + Send>;

/// Connects, migrates, wires every port and serves on `listener` until shut down.
pub async fn launch(settings: Settings, listener: TcpListener) -> anyhow::Result<Application> {
    launch_with(settings, listener, Box::new(|_| {})).await
}

/// [`launch`], with `hook` applied to the ports first.
pub async fn launch_with(
    settings: Settings,
    listener: TcpListener,
    hook: PortsHook,
) -> anyhow::Result<Application> {
    let connections = settings.server.connection_limits()?;
    let metrics = flash_sale_adapter::metrics::install();
    let db = Database::connect(settings.database.url.expose(), &settings.database.pool())
        .await
        .context("connecting to the database")?;
    db.migrate().await.context("migrating the database")?;
    let redis = if settings.redis.url.expose().trim().is_empty() {
        None
    } else {
        let redis = Redis::connect(settings.redis.url.expose(), &settings.redis.key_prefix)
            .await
            .context("connecting to Redis")?;
        tracing::info!(
            cluster = redis.is_cluster(),
            "stock, locks and the shared cache are in Redis"
        );
        Some(redis)
    };
    let mut ports = ports(&settings, &db, redis.as_ref());
    let broker = start_broker(&settings).await?;
    if let Some(broker) = &broker {
        ports.queue = broker.clone();
    }
    hook(&mut ports);
    let app_settings = flash_sale_app::Settings {
        payment_timeout: settings.orders.payment_timeout.0,
        recovery_after: settings.stock.recovery_after.0,
        catalogue: CatalogueSettings {
            local_ttl: settings.cache.local_ttl.0,
            null_ttl: settings.cache.null_ttl.0,
            shared_ttl: settings.cache.shared_ttl.0,
            ..CatalogueSettings::default()
        },
    };
    let policy = Arc::new(OrderingPolicy::new(settings.ordering.to_config()?));
    let exec = Arc::new(Executors::new(&ports, &app_settings, policy));
    let mut probes: Vec<Arc<dyn Probe>> = vec![Arc::new(DatabaseProbe(db.clone()))];
    if let Some(redis) = &redis {
        probes.push(Arc::new(RedisProbe(redis.clone())));
    }
    let limits = Arc::new(RateLimits::new(
        settings.rate_limit.per_user_per_second,
        settings.rate_limit.per_ip_per_second,
    ));
    let (stop, _) = watch::channel(false);
    let state = AppState::new(Shared {
        exec: exec.clone(),
        auth: Arc::new(
            JwtAuth::new(&jwt_secret(&settings))
                .context("auth.jwt_secret")?
                .with_max_lifetime(settings.auth.max_token_lifetime.0),
        ),
        metrics,
        probes: Arc::new(probes),
        limits: limits.clone(),
        writes: TaskTracker::new(),
        request_timeout: settings.server.request_timeout.0,
        stopping: stop.subscribe(),
    });
    let writes = state.writes.clone();

    let addr = listener.local_addr().context("listener address")?;
    let jobs = spawn_jobs(&settings, &exec, limits, redis.as_ref(), &stop);
    let server = tokio::spawn(crate::serve::serve(
        listener,
        router(state),
        connections,
        stop.subscribe(),
    ));
    tracing::info!(%addr, database = ?db.backend(), "flash-sale listening");
    Ok(Application {
        addr,
        stop,
        server,
        jobs,
        db,
        broker,
        exec,
        writes,
    })
}
