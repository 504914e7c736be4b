//! The console's live view: order attempts counted per product and second (added up
//! over every instance by the [`TallyGateway`]), and the snapshot of every online
//! product that all admin streams of this instance share — computed once per round
//! however many consoles watch, and only while one does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flash_sale_client::{AttemptsDto, ConsoleSnapshotDto, ProductPulseDto};
use flash_sale_domain::Chain;
use flash_sale_domain::event::EventStatus;
use flash_sale_domain::gateway::{
    Attempt, Clock, EventGateway, ProductGateway, Tally, TallyGateway,
};
use flash_sale_domain::page::PageRequest;
use flash_sale_domain::product::ProductId;
use tokio::sync::{Notify, watch};

use crate::assembler::{product_status_dto, strategy_dto};
use crate::error::AppError;
use crate::policy::OrderingPolicy;
use crate::stock::StockService;

/// How far back a snapshot's attempts go.
const WINDOW: Duration = Duration::from_mins(1);
/// Most products in one snapshot.
const MOST_PRODUCTS: usize = 100;

/// This instance's attempts since the last flush, per product. A product stays in the
/// map once it has had an attempt past the sale checks (its counts go back to zero at
/// each flush): only such products are counted when refused before those checks (a
/// rate-limited request names any id it likes).
pub struct AttemptCounter {
    pending: Mutex<HashMap<ProductId, Tally>>,
    tally: Arc<dyn TallyGateway>,
    clock: Arc<dyn Clock>,
}

impl AttemptCounter {
    /// Counts into `tally`.
    pub fn new(tally: Arc<dyn TallyGateway>, clock: Arc<dyn Clock>) -> Self {
        Self {
            pending: Mutex::default(),
            tally,
            clock,
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<ProductId, Tally>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One attempt on a product that exists (it passed the catalogue).
    pub fn record(&self, product: ProductId, attempt: Attempt) {
        self.pending().entry(product).or_default()[attempt.index()] += 1;
    }

    /// One order refused by the per-buyer rate limit, before the sale checks: counted
    /// only for a known product.
    pub fn record_rate_limited(&self, product: i64) {
        if let Some(counts) = self.pending().get_mut(&ProductId(product)) {
            counts[Attempt::RateLimited.index()] += 1;
        }
    }

    /// Adds what was counted since the last flush to the current second.
    ///
    /// # Errors
    /// `Unavailable`; those counts are lost (they only feed a chart).
    pub async fn flush(&self) -> Result<(), AppError> {
        let counts: Vec<(ProductId, Tally)> = self
            .pending()
            .iter_mut()
            .filter(|(_, counts)| counts.iter().any(|n| *n > 0))
            .map(|(product, counts)| (*product, std::mem::take(counts)))
            .collect();
        if counts.is_empty() {
            return Ok(());
        }
        self.tally
            .add(self.clock.now().timestamp(), &counts)
            .await?;
        Ok(())
    }
}

/// The last snapshot as JSON, shared by every admin stream of this instance.
pub type Snapshot = Option<Arc<str>>;

/// What the feed reads.
pub struct ConsolePorts {
    /// Events.
    pub events: Arc<dyn EventGateway>,
    /// Products.
    pub products: Arc<dyn ProductGateway>,
    /// The counts of every instance.
    pub tally: Arc<dyn TallyGateway>,
    /// Stock views.
    pub stock: Arc<StockService>,
    /// Effective strategies.
    pub policy: Arc<OrderingPolicy>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

/// `GET /admin/stream`: snapshots of every product of the online events.
pub struct ConsoleFeed {
    ports: ConsolePorts,
    latest: watch::Sender<Snapshot>,
    wanted: Notify,
}

impl ConsoleFeed {
    /// Reads from `ports`.
    pub fn new(ports: ConsolePorts) -> Self {
        Self {
            ports,
            latest: watch::Sender::new(None),
            wanted: Notify::new(),
        }
    }

    /// The snapshots from now on (the latest first, if any); wakes the feed.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        let receiver = self.latest.subscribe();
        self.wanted.notify_one();
        receiver
    }

    /// Returns once someone watches. While nobody does, the last snapshot is dropped,
    /// so that the next watcher does not start from an old one.
    pub async fn watched(&self) {
        while self.latest.receiver_count() == 0 {
            self.latest.send_replace(None);
            self.wanted.notified().await;
        }
    }

    /// Takes a snapshot and hands it to every watcher.
    ///
    /// # Errors
    /// `Unavailable` when the events cannot be listed.
    pub async fn publish(&self) -> Result<(), AppError> {
        let snapshot = self.snapshot().await?;
        let json = serde_json::to_string(&snapshot)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("console snapshot: {e}")))?;
        self.latest.send_replace(Some(json.into()));
        Ok(())
    }

    /// Every product of the online events (at most [`MOST_PRODUCTS`]); a product whose
    /// stock cannot be read now is left out of this one.
    ///
    /// # Errors
    /// `Unavailable` when the events cannot be listed.
    pub async fn snapshot(&self) -> Result<ConsoleSnapshotDto, AppError> {
        let p = &self.ports;
        let at = p.clock.now();
        let since = at.timestamp() - i64::try_from(WINDOW.as_secs()).unwrap_or(60);
        let online = p
            .events
            .list(
                Some(EventStatus::Online),
                PageRequest {
                    page: 1,
                    page_size: 100,
                },
            )
            .await?;
        let mut products = Vec::new();
        for event in &online.items {
            let strategy = strategy_dto(p.policy.effective(event));
            for product in p.products.list_for_event(event.id).await? {
                if products.len() == MOST_PRODUCTS {
                    break;
                }
                let (inventory, seconds) = match tokio::try_join!(
                    p.stock.inventory_of(&product),
                    async { Ok::<_, AppError>(p.tally.since(product.id, since).await?) },
                ) {
                    Ok(read) => read,
                    Err(e) => {
                        tracing::debug!(product.id = product.id.0, error = %Chain(&e), "console: product left out");
                        continue;
                    }
                };
                products.push(ProductPulseDto {
                    product_id: product.id.0,
                    event_id: event.id.0,
                    event_title: event.title.as_str().to_owned(),
                    title: product.title.as_str().to_owned(),
                    status: product_status_dto(product.status),
                    effective_strategy: strategy,
                    inventory,
                    per_second: seconds.into_iter().map(attempts_dto).collect(),
                });
            }
        }
        Ok(ConsoleSnapshotDto { at, products })
    }
}

fn attempts_dto((second, tally): (i64, Tally)) -> AttemptsDto {
    let n = |attempt: Attempt| tally[attempt.index()];
    AttemptsDto {
        second,
        sold: n(Attempt::Sold),
        sold_out: n(Attempt::SoldOut),
        limit_exceeded: n(Attempt::LimitExceeded),
        not_on_sale: n(Attempt::NotOnSale),
        unavailable: n(Attempt::Unavailable),
        rate_limited: n(Attempt::RateLimited),
    }
}
