//! [`StockService`]: everything the use cases do with the stock ledger.
//!
//! - The ledger learns a product from the database on first use (and again on every
//!   re-lay), one loader at a time; nothing sells or returns before that ([`load`]).
//! - Reservations are holds named by their order or placement id, settled exactly
//!   once; a per-product sold-out flag stops a sold-out storm before the ledger and is
//!   cleared whenever units come back ([`reserve`]).
//! - Returns (cancel, expiry, stock changes) are announced before their database write
//!   and finished after it, with the buckets the database names ([`returns`]).
//! - Re-lays (re-arrangement, reconcile, strategy switches) suspend the product under
//!   a renewed lease, wait until nothing is in progress and rewrite the ledger from a
//!   locked read of the database ([`relay`]).
//! - Consistency is checked bucket by bucket with in-flight work accounted for
//!   ([`check`]); holds whose request is gone are ended by the recovery job, which asks
//!   the database what became of them ([`recovery`]).

mod check;
mod jobs;
mod load;
mod recovery;
mod relay;
mod reserve;
mod returns;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use flash_sale_domain::Chain;
use flash_sale_domain::gateway::{
    Clock, LockGateway, LockLease, Notice, NoticeBus, OrderGateway, PlacementGateway,
    ProductGateway, StockLedger,
};
use flash_sale_domain::product::ProductId;
use tokio::sync::Mutex;

pub use check::{Drift, StockCheck};
pub use jobs::{StockReconcileJobExe, StockRecoveryJobExe, StockWarmUpJobExe};

use crate::error::AppError;

/// How long an operation waits for a suspended product before answering 503.
const SUSPEND_PATIENCE: Duration = Duration::from_secs(2);

/// How long an instance refuses placements by itself once the ledger said the queue
/// is behind, before it asks again.
const SHED_FOR: Duration = Duration::from_millis(100);
/// How long a loader or re-lay may hold a product's load lock without renewing it.
const LOAD_LOCK_TTL: Duration = Duration::from_secs(10);
/// Sold-out flag stripes (by product id): a return bumps its stripe's epoch.
const EPOCH_STRIPES: usize = 1024;

/// The stock ledger as the use cases see it.
pub struct StockService {
    ledger: Arc<dyn StockLedger>,
    products: Arc<dyn ProductGateway>,
    orders: Arc<dyn OrderGateway>,
    placements: Arc<dyn PlacementGateway>,
    locks: Arc<dyn LockGateway>,
    bus: Option<Arc<dyn NoticeBus>>,
    clock: Arc<dyn Clock>,
    recovery_after: Duration,
    loader: Mutex<()>,
    sold_out: moka::sync::Cache<ProductId, ()>,
    /// How far behind the placement queue was when the ledger last refused a
    /// placement for it, kept [`SHED_FOR`]: meanwhile placements are refused here.
    queue_behind: moka::sync::Cache<(), Duration>,
    /// Bumped whenever units come back, so that a `SOLD_OUT` answer that was on its
    /// way before never sets the flag after the return cleared it.
    epochs: Vec<AtomicU64>,
    /// Product → the bucket count a strategy switch wants for it and could not re-lay
    /// yet; the reconcile job re-lays until it has it.
    layouts: std::sync::Mutex<HashMap<ProductId, u32>>,
}

/// The ports the stock service works with.
pub struct StockPorts {
    /// The hot-path ledger.
    pub ledger: Arc<dyn StockLedger>,
    /// Products and buckets.
    pub products: Arc<dyn ProductGateway>,
    /// Orders.
    pub orders: Arc<dyn OrderGateway>,
    /// Placements.
    pub placements: Arc<dyn PlacementGateway>,
    /// Named locks.
    pub locks: Arc<dyn LockGateway>,
    /// Cross-instance notices, if any.
    pub bus: Option<Arc<dyn NoticeBus>>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// A hold or return in progress for longer than this has lost its request.
    pub recovery_after: Duration,
}

impl StockService {
    /// A service over the ledger, reading the truth from the gateways.
    pub fn new(ports: StockPorts) -> Self {
        Self {
            ledger: ports.ledger,
            products: ports.products,
            orders: ports.orders,
            placements: ports.placements,
            locks: ports.locks,
            bus: ports.bus,
            clock: ports.clock,
            recovery_after: ports.recovery_after,
            loader: Mutex::new(()),
            sold_out: moka::sync::Cache::builder()
                .name("stock.sold_out")
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(10))
                .build(),
            queue_behind: moka::sync::Cache::builder()
                .name("stock.queue_behind")
                .max_capacity(1)
                .time_to_live(SHED_FOR)
                .build(),
            epochs: (0..EPOCH_STRIPES).map(|_| AtomicU64::new(0)).collect(),
            layouts: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Remembers that `product_id` should have `count` buckets (a strategy switch
    /// could not re-lay it now): the reconcile job re-lays until it has.
    pub fn want_layout(&self, product_id: ProductId, count: u32) {
        self.layouts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(product_id, count);
    }

    /// Forgets a wanted layout (it was re-laid, or a later switch no longer wants it).
    pub fn forget_layout(&self, product_id: ProductId) {
        self.layouts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&product_id);
    }

    /// Forgets `product_id`'s wanted layout if it is still `count`.
    fn layout_done(&self, product_id: ProductId, count: u32) {
        let mut layouts = self.layouts.lock().unwrap_or_else(PoisonError::into_inner);
        if layouts.get(&product_id) == Some(&count) {
            layouts.remove(&product_id);
        }
    }

    /// The wanted layouts not re-laid yet.
    fn wanted_layouts(&self) -> Vec<(ProductId, u32)> {
        self.layouts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, count)| (*id, *count))
            .collect()
    }

    fn epoch(&self, product_id: ProductId) -> u64 {
        let stripe = usize::try_from(product_id.0.unsigned_abs()).unwrap_or(0) % EPOCH_STRIPES;
        self.epochs[stripe].load(Ordering::Acquire)
    }

    /// Whether the product is known to have no unit left.
    pub fn is_sold_out(&self, product_id: ProductId) -> bool {
        self.sold_out.contains_key(&product_id)
    }

    /// Sets the sold-out flag for an answer given while the epoch was `epoch`, unless
    /// units came back since (then the answer is stale).
    fn flag_sold_out(&self, product_id: ProductId, epoch: u64) {
        self.sold_out.insert(product_id, ());
        if self.epoch(product_id) != epoch {
            self.sold_out.invalidate(&product_id);
        }
    }

    /// Units came back: the product sells again, here and on every instance.
    pub async fn clear_sold_out(&self, product_id: ProductId) {
        self.forget_sold_out(product_id);
        if let Some(bus) = &self.bus
            && let Err(e) = bus.publish(Notice::SoldOutCleared(product_id)).await
        {
            tracing::warn!(error = %Chain(&e), "could not broadcast that units came back; other instances' flags expire");
        }
    }

    /// Drops this instance's sold-out flag (on a notice from any instance).
    pub fn forget_sold_out(&self, product_id: ProductId) {
        let stripe = usize::try_from(product_id.0.unsigned_abs()).unwrap_or(0) % EPOCH_STRIPES;
        self.epochs[stripe].fetch_add(1, Ordering::AcqRel);
        self.sold_out.invalidate(&product_id);
    }

    /// Takes the product's load lock, waiting up to [`SUSPEND_PATIENCE`].
    async fn load_lock(&self, product_id: ProductId) -> Result<LockLease, AppError> {
        let name = format!("stock-load:{}", product_id.0);
        crate::locks::acquire_within(&*self.locks, &name, LOAD_LOCK_TTL, SUSPEND_PATIENCE)
            .await?
            .ok_or_else(|| {
                AppError::Unavailable(
                    "another instance is loading or re-laying the stock; try again".into(),
                )
            })
    }

    async fn unlock(&self, lease: &LockLease) {
        if let Err(e) = self.locks.release(lease).await {
            tracing::debug!(error = %Chain(&e), "lock release failed; it expires");
        }
    }
}
