//! Background jobs: they call the same executors as the routes, and each run is
//! idempotent.

use std::sync::Arc;
use std::time::Duration;

use flash_sale_app::Executors;
use flash_sale_app::error::Chain;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs `round` at once and then every `interval` (a late round delays the next one)
/// until `stop` turns true.
fn every<F, Fut>(
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    mut round: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            round().await;
        }
    })
}

/// How long one instance holds a job's lock for a round.
const JOB_LEASE: Duration = Duration::from_secs(10);

/// How often the expiry job looks for unpaid orders past their time (orders are
/// marked within two seconds of `expires_at`). One instance runs each round.
pub const EXPIRY_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the expiry job every [`EXPIRY_INTERVAL`] until `stop` turns true.
pub fn spawn_expiry(exec: Arc<Executors>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    every(EXPIRY_INTERVAL, stop, move || {
        let exec = exec.clone();
        async move {
            match exec
                .as_leader("expiry", JOB_LEASE, exec.order_expire.execute())
                .await
            {
                Ok(Some(0) | None) => {}
                Ok(Some(n)) => tracing::debug!(orders = n, "expired unpaid orders"),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "expiry run failed; retrying next tick");
                }
            }
        }
    })
}

/// How often the stock job loads the stock of online events not loaded yet, repairs
/// lasting drift between the stock ledger and the database and re-lays the layouts a
/// strategy switch could not re-lay at once.
pub const WARM_UP_INTERVAL: Duration = Duration::from_secs(10);

/// Warms the stock ledger now (start-up) and every [`WARM_UP_INTERVAL`], and runs the
/// leader-locked reconcile after each warm-up, until `stop`.
pub fn spawn_warm_up(exec: Arc<Executors>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    every(WARM_UP_INTERVAL, stop, move || {
        let exec = exec.clone();
        async move {
            match exec.stock_warm_up.execute().await {
                Ok(n) => tracing::debug!(products = n, "stock warm"),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "stock warm-up failed; retrying next tick");
                }
            }
            match exec
                .as_leader("reconcile", JOB_LEASE, exec.stock_reconcile.execute())
                .await
            {
                Ok(Some(0) | None) => {}
                Ok(Some(n)) => tracing::warn!(products = n, "stock re-laid or drift repaired"),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "reconcile run failed; retrying next tick");
                }
            }
        }
    })
}

/// How often the recovery job looks for holds and returns whose request is gone.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the leader-locked recovery of stuck holds and returns every
/// [`RECOVERY_INTERVAL`] until `stop`.
pub fn spawn_recovery(exec: Arc<Executors>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    every(RECOVERY_INTERVAL, stop, move || {
        let exec = exec.clone();
        async move {
            match exec
                .as_leader("stock-recovery", JOB_LEASE, exec.stock_recovery.execute())
                .await
            {
                Ok(Some(0) | None) => {}
                Ok(Some(n)) => tracing::warn!(holds = n, "ended holds whose request was gone"),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "recovery run failed; retrying next tick");
                }
            }
        }
    })
}

/// How the async consumer runs.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSettings {
    /// Tasks per batch (one database transaction each).
    pub batch_size: usize,
    /// Batches in progress at once.
    pub workers: usize,
    /// How long a graceful shutdown keeps draining the queue.
    pub drain_timeout: Duration,
}

/// Runs `workers` consumer loops until `stop`, then drains what is left in the queue
/// (up to `drain_timeout`; what is still queued after that is durable and resumed by
/// the sweeper of the next run).
pub fn spawn_consumer(
    exec: &Arc<Executors>,
    settings: ConsumerSettings,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    (0..settings.workers.max(1))
        .map(|_| {
            let exec = exec.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let consumer = &exec.placement_consume;
                while !*stop.borrow() {
                    let report = consumer
                        .consume_next(settings.batch_size, Duration::from_millis(200))
                        .await;
                    if report.total() > 0 {
                        tracing::debug!(?report, "placements consumed");
                    }
                }
                let deadline = tokio::time::Instant::now() + settings.drain_timeout;
                while tokio::time::Instant::now() < deadline {
                    if consumer
                        .consume_next(settings.batch_size, Duration::ZERO)
                        .await
                        .total()
                        == 0
                    {
                        break;
                    }
                }
            })
        })
        .collect()
}

/// How often the sweeper looks for placements queued for too long.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// Queued for longer than this: the sweeper runs the placement again.
pub const SWEEP_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Runs the placement sweeper at start-up (over everything queued) and every
/// [`SWEEP_INTERVAL`] (over placements queued for longer than [`SWEEP_RETRY_AFTER`]),
/// one instance per round, until `stop`.
pub fn spawn_sweeper(
    exec: Arc<Executors>,
    batch_size: usize,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut retry_after = Duration::ZERO;
    every(SWEEP_INTERVAL, stop, move || {
        let exec = exec.clone();
        let this_round = std::mem::replace(&mut retry_after, SWEEP_RETRY_AFTER);
        async move {
            let sweep = exec.placement_sweep.execute(batch_size, this_round);
            match exec.as_leader("placement-sweep", JOB_LEASE, sweep).await {
                Ok(Some(0) | None) => {}
                Ok(Some(n)) => tracing::info!(placements = n, "swept queued placements"),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "placement sweep failed; retrying next tick");
                }
            }
        }
    })
}

/// Every minute, forgets rate-limit keys not seen recently, until `stop` turns true.
pub fn spawn_housekeeping(
    limits: Arc<crate::rate_limit::RateLimits>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    every(Duration::from_mins(1), stop, move || {
        limits.retain_recent();
        std::future::ready(())
    })
}

/// How often this instance adds its order attempts to the console's counts.
pub const ATTEMPT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Flushes the console's attempt counts every [`ATTEMPT_FLUSH_INTERVAL`] until `stop`.
pub fn spawn_attempt_flush(exec: Arc<Executors>, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    every(ATTEMPT_FLUSH_INTERVAL, stop, move || {
        let exec = exec.clone();
        async move {
            if let Err(e) = exec.attempts.flush().await {
                tracing::debug!(error = %Chain(&e), "console counts lost for a second");
            }
        }
    })
}

/// How often the console's snapshot is taken while an admin stream is open.
pub const CONSOLE_INTERVAL: Duration = Duration::from_millis(500);

/// Takes the console's snapshot every [`CONSOLE_INTERVAL`] while anyone watches, and
/// hands it to every admin stream of this instance, until `stop`.
pub fn spawn_console_feed(exec: Arc<Executors>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = exec.console.watched() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            if let Err(e) = exec.console.publish().await {
                tracing::warn!(error = %Chain(&e), "console snapshot failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(CONSOLE_INTERVAL) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    })
}
