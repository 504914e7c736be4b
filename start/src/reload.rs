//! Live configuration: the `ordering.*` settings (default strategy, per-event
//! overrides) are re-read when the config file changes and on SIGHUP, and put in force
//! at once; every other setting needs a restart. A file that does not parse changes
//! nothing (and says why).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flash_sale_app::Executors;
use flash_sale_app::policy::OrderingConfig;
use flash_sale_domain::Chain;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Settings;

/// How often the file is looked at.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Watches `source` (by content, every [`RELOAD_INTERVAL`]) and SIGHUP until `stop`.
pub fn spawn_config_reload(
    source: PathBuf,
    exec: Arc<Executors>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangups = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        ) {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "no SIGHUP handler; the config file is still watched");
                None
            }
        };
        let mut seen = std::fs::read(&source).ok();
        let mut tick = tokio::time::interval(RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {
                    let now = std::fs::read(&source).ok();
                    if now == seen {
                        continue;
                    }
                    seen = now;
                }
                _ = hangup => tracing::info!("SIGHUP: re-reading the configuration"),
                _ = stop.wait_for(|stop| *stop) => return,
            }
            reload(&source, &exec).await;
        }
    })
}

/// Reads the file (and the environment) again and puts its `ordering.*` in force.
async fn reload(source: &std::path::Path, exec: &Executors) {
    let config = Settings::load(Some(source)).and_then(|s| s.ordering.to_config());
    match config {
        Ok(config) => {
            let before = exec.policy.config();
            if *before != config {
                log_overrides(&before, &config);
            }
            match exec.strategy_switch.execute(config).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(products = n, "stock re-laid for the new strategies"),
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "re-laying stock for the new strategies failed");
                }
            }
        }
        Err(e) => tracing::warn!(
            file = %source.display(),
            error = format!("{e:#}"),
            "the changed configuration is invalid; the one in force stays"
        ),
    }
}

fn log_overrides(before: &OrderingConfig, after: &OrderingConfig) {
    let mut events: Vec<_> = before
        .overrides
        .keys()
        .chain(after.overrides.keys())
        .collect();
    events.sort_unstable_by_key(|id| id.0);
    events.dedup();
    for id in events {
        let (from, to) = (before.overrides.get(id), after.overrides.get(id));
        if from != to {
            tracing::info!(event.id = id.0, from = ?from, to = ?to, "ordering override switched");
        }
    }
}
