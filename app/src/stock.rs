//! [`StockService`]: everything the use cases do with the stock ledger.
//!
//! - The ledger learns a product from the database on first use (and again on
//!   reconcile), one loader at a time; nothing sells or returns before that.
//! - A per-product sold-out flag stops a sold-out storm before the ledger; it is set
//!   when a reservation finds no unit left at all and cleared whenever units return.
//! - Returns (cancel, expiry, stock changes) are bracketed in the ledger so that a
//!   reload can wait for a quiet moment and never counts a unit twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flash_sale_client::{BucketInventoryDto, InventoryDto};
use flash_sale_domain::DomainError;
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{
    GatewayError, InFlight, LedgerView, LockGateway, Notice, NoticeBus, OrderGateway,
    PlacementGateway, ProductGateway, Release, Reservation, ReserveRequest, Settlement,
    StockLedger,
};
use flash_sale_domain::order::Order;
use flash_sale_domain::product::{ProductError, ProductId};
use flash_sale_domain::stock::{BucketDelta, StockBucket};
use tokio::sync::Mutex;

use crate::error::AppError;

/// How long an operation waits for a suspended product before answering 503.
const SUSPEND_PATIENCE: Duration = Duration::from_secs(2);
/// How long a reload waits for operations in progress to finish.
const RELOAD_WAIT: Duration = Duration::from_secs(3);

/// How long a loader may hold a product's load lock.
const LOAD_LOCK_TTL: Duration = Duration::from_secs(10);

/// The stock ledger as the use cases see it.
pub struct StockService {
    ledger: Arc<dyn StockLedger>,
    products: Arc<dyn ProductGateway>,
    orders: Arc<dyn OrderGateway>,
    placements: Arc<dyn PlacementGateway>,
    locks: Arc<dyn LockGateway>,
    bus: Option<Arc<dyn NoticeBus>>,
    loader: Mutex<()>,
    sold_out: moka::sync::Cache<ProductId, ()>,
}

fn suspended(error: &GatewayError) -> bool {
    matches!(
        error,
        GatewayError::Rejected(DomainError::Product(ProductError::Suspended))
    )
}

fn unavailable_while_suspended() -> AppError {
    AppError::domain(ProductError::Suspended)
}

impl StockService {
    /// A service over the ledger, reading the truth from the gateways.
    pub fn new(
        ledger: Arc<dyn StockLedger>,
        products: Arc<dyn ProductGateway>,
        orders: Arc<dyn OrderGateway>,
        placements: Arc<dyn PlacementGateway>,
        locks: Arc<dyn LockGateway>,
        bus: Option<Arc<dyn NoticeBus>>,
    ) -> Self {
        Self {
            ledger,
            products,
            orders,
            placements,
            locks,
            bus,
            loader: Mutex::new(()),
            sold_out: moka::sync::Cache::builder()
                .name("stock.sold_out")
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(10))
                .build(),
        }
    }

    /// Loads the product into the ledger from the database unless it is there: one
    /// loader per process, and across instances under the product's load lock — a
    /// missing product is rebuilt, never taken for sold out or for endless.
    pub async fn ensure_loaded(&self, product_id: ProductId) -> Result<(), AppError> {
        if self.ledger.is_loaded(product_id).await? {
            return Ok(());
        }
        let _one_loader = self.loader.lock().await;
        if self.ledger.is_loaded(product_id).await? {
            return Ok(());
        }
        let lease = self.load_lock(product_id).await?;
        let result = if self.ledger.is_loaded(product_id).await? {
            Ok(())
        } else {
            self.load_from_database(product_id).await
        };
        self.unlock(&lease).await;
        result
    }

    /// Whether the product is in the stock ledger (nothing is loaded by asking).
    pub async fn is_loaded(&self, product_id: ProductId) -> Result<bool, AppError> {
        Ok(self.ledger.is_loaded(product_id).await?)
    }

    /// Takes the product's load lock, waiting up to [`SUSPEND_PATIENCE`].
    async fn load_lock(
        &self,
        product_id: ProductId,
    ) -> Result<flash_sale_domain::gateway::LockLease, AppError> {
        let name = format!("stock-load:{}", product_id.0);
        let deadline = tokio::time::Instant::now() + SUSPEND_PATIENCE;
        loop {
            if let Some(lease) = self.locks.try_acquire(&name, LOAD_LOCK_TTL).await? {
                return Ok(lease);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::Unavailable(
                    "another instance is loading the stock; try again".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn unlock(&self, lease: &flash_sale_domain::gateway::LockLease) {
        if let Err(e) = self.locks.release(lease).await {
            tracing::debug!(error = %e, "lock release failed; it expires");
        }
    }

    async fn load_from_database(&self, product_id: ProductId) -> Result<(), AppError> {
        let (buckets, quotas, in_flight) = self.database_state(product_id).await?;
        if buckets.is_empty() {
            return Err(AppError::NotFound("product"));
        }
        self.ledger
            .load(product_id, &buckets, &quotas, &in_flight)
            .await?;
        tracing::debug!(product.id = product_id.0, "stock loaded into the ledger");
        Ok(())
    }

    /// What the ledger is loaded from: the buckets, the buyers' quotas and the queued
    /// placements, their units added to their buyers' quotas. The queued placements
    /// are read before and after the rows and the read is repeated until no placement
    /// was resolved in between, so the rows and the placements agree.
    async fn database_state(
        &self,
        product_id: ProductId,
    ) -> Result<(Vec<StockBucket>, Vec<(UserId, u32)>, Vec<InFlight>), AppError> {
        let mut attempts = 0;
        let (queued, buckets, quotas) = loop {
            let before = self.placements.queued_for(product_id).await?;
            let buckets = self.products.buckets(product_id).await?;
            let quotas = self.orders.quotas(product_id).await?;
            let after = self.placements.queued_for(product_id).await?;
            let ids = |v: &[flash_sale_domain::placement::Placement]| {
                v.iter()
                    .map(|p| p.id.clone())
                    .collect::<std::collections::HashSet<_>>()
            };
            attempts += 1;
            let stable = ids(&before).is_subset(&ids(&after));
            if stable || attempts >= 20 {
                if !stable {
                    tracing::warn!(
                        product.id = product_id.0,
                        "placements kept resolving while loading; reconcile evens it out"
                    );
                }
                break (before, buckets, quotas);
            }
        };
        let mut quotas: HashMap<UserId, u32> = quotas.into_iter().collect();
        let in_flight: Vec<InFlight> = queued
            .into_iter()
            .map(|p| {
                *quotas.entry(p.user_id.clone()).or_default() += p.quantity;
                InFlight {
                    token: p.id.as_str().to_owned(),
                    user_id: p.user_id,
                    bucket_no: p.bucket_no,
                    quantity: p.quantity,
                }
            })
            .collect();
        Ok((buckets, quotas.into_iter().collect(), in_flight))
    }

    /// Loads every product in `ids` that is not loaded yet; a failure is logged and
    /// left for the first order of that product to retry.
    pub async fn warm(&self, ids: Vec<ProductId>) -> usize {
        let mut loaded = 0;
        for id in ids {
            match self.ensure_loaded(id).await {
                Ok(()) => loaded += 1,
                Err(e) => {
                    tracing::warn!(product.id = id.0, error = %e, "stock warm-up failed; the first order will load it");
                }
            }
        }
        loaded
    }

    /// Whether the product is known to have no unit left.
    pub fn is_sold_out(&self, product_id: ProductId) -> bool {
        self.sold_out.contains_key(&product_id)
    }

    /// Units came back: the product sells again, here and on every instance.
    pub async fn clear_sold_out(&self, product_id: ProductId) {
        self.forget_sold_out(product_id);
        if let Some(bus) = &self.bus
            && let Err(e) = bus.publish(Notice::SoldOutCleared(product_id)).await
        {
            tracing::warn!(error = %e, "could not broadcast that units came back; other instances' flags expire");
        }
    }

    /// Drops this instance's sold-out flag (on a notice from any instance).
    pub fn forget_sold_out(&self, product_id: ProductId) {
        self.sold_out.invalidate(&product_id);
    }

    /// Reserves units and quota, loading the product first if needed and waiting
    /// briefly while it is suspended.
    pub async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, AppError> {
        let deadline = tokio::time::Instant::now() + SUSPEND_PATIENCE;
        loop {
            match self.ledger.reserve(request).await? {
                Reservation::NotLoaded => self.ensure_loaded(request.product_id).await?,
                Reservation::Suspended => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(unavailable_while_suspended());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Reservation::SoldOut { left: 0 } => {
                    self.sold_out.insert(request.product_id, ());
                    return Ok(Reservation::SoldOut { left: 0 });
                }
                other => return Ok(other),
            }
        }
    }

    /// Ends a reservation; a failure here is left for reconcile, and logged.
    pub async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        bucket_no: u32,
        quantity: u32,
        settlement: Settlement<'_>,
    ) {
        let released = matches!(settlement, Settlement::Released(_));
        if let Err(e) = self
            .ledger
            .settle(product_id, token, bucket_no, quantity, settlement)
            .await
        {
            tracing::error!(product.id = product_id.0, error = %e, "could not settle a reservation; reconcile will repair it");
        }
        if released {
            self.clear_sold_out(product_id).await;
        }
    }

    /// Ends a placement's reservation. A placement may outlive the ledger's memory
    /// of it (a restart): while its product is being loaded, this waits for the
    /// loader, so the reservation is either in what it loaded (and settles now) or was
    /// already resolved when the loader read the queued placements (and settling is a
    /// no-op) — never lost in between.
    pub async fn settle_placement(
        &self,
        placement: &flash_sale_domain::placement::Placement,
        settlement: Settlement<'_>,
    ) {
        let _loading = match self.ledger.is_loaded(placement.product_id).await {
            Ok(false) => Some(self.loader.lock().await),
            _ => None,
        };
        self.settle(
            placement.product_id,
            placement.id.as_str(),
            placement.bucket_no,
            placement.quantity,
            settlement,
        )
        .await;
    }

    /// Announces a return, loading the product first and waiting while it is
    /// suspended.
    async fn begin_return(&self, product_id: ProductId, token: &str) -> Result<(), AppError> {
        let deadline = tokio::time::Instant::now() + SUSPEND_PATIENCE;
        loop {
            match self.ledger.begin_return(product_id, token).await {
                Ok(true) => return Ok(()),
                Ok(false) => self.ensure_loaded(product_id).await?,
                Err(e) if suspended(&e) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(unavailable_while_suspended());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn finish_return(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&UserId, u32)>,
    ) {
        if let Err(e) = self
            .ledger
            .finish_return(product_id, token, deltas, quota)
            .await
        {
            tracing::error!(product.id = product_id.0, error = %e, "could not finish a return; reconcile will repair it");
        }
        if deltas.iter().any(|d| d.delta > 0) {
            self.clear_sold_out(product_id).await;
        }
    }

    /// Cancels or expires a pending order: the database first (exactly once), then the
    /// ledger. `false` when the order was no longer pending.
    pub async fn release_order(
        &self,
        order: &Order,
        release: Release,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        // One token per attempt: the database makes the release exactly-once; the token
        // makes each attempt's ledger return apply at most once (two racing cancels of
        // one order must not consume each other's token).
        let token = format!("release:{}:{}", order.id, uuid::Uuid::now_v7());
        self.begin_return(order.product_id, &token).await?;
        let result = self.orders.release(order, release, now).await;
        if matches!(result, Ok(true)) {
            let back = [BucketDelta {
                bucket_no: order.bucket_no,
                delta: i64::from(order.quantity),
            }];
            self.finish_return(
                order.product_id,
                &token,
                &back,
                Some((&order.user_id, order.quantity)),
            )
            .await;
        } else {
            self.finish_return(order.product_id, &token, &[], None)
                .await;
        }
        Ok(result?)
    }

    /// Adds units: the database first, then the ledger.
    pub async fn add_units<T>(
        &self,
        product_id: ProductId,
        plan: &[BucketDelta],
        write: impl Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let token = format!("stock:{}", uuid::Uuid::now_v7());
        self.begin_return(product_id, &token).await?;
        let result = write.await;
        let applied: &[BucketDelta] = if result.is_ok() { plan } else { &[] };
        self.finish_return(product_id, &token, applied, None).await;
        result
    }

    /// Removes unsold units: out of the ledger first (so nobody reserves them
    /// meanwhile), then the database; back into the ledger if the database refuses.
    /// `Ok(None)` when the ledger no longer holds that many in those buckets.
    pub async fn remove_units<T>(
        &self,
        product_id: ProductId,
        plan: &[BucketDelta],
        write: impl Future<Output = Result<T, AppError>>,
    ) -> Result<Option<T>, AppError> {
        let token = format!("stock:{}", uuid::Uuid::now_v7());
        self.begin_return(product_id, &token).await?;
        match self.ledger.take(product_id, plan).await {
            Ok(true) => {}
            Ok(false) => {
                self.finish_return(product_id, &token, &[], None).await;
                return Ok(None);
            }
            Err(e) => {
                self.finish_return(product_id, &token, &[], None).await;
                return Err(e.into());
            }
        }
        let result = write.await;
        let give_back: Vec<BucketDelta> = if result.is_ok() {
            Vec::new()
        } else {
            plan.iter()
                .map(|d| BucketDelta {
                    bucket_no: d.bucket_no,
                    delta: -d.delta,
                })
                .collect()
        };
        self.finish_return(product_id, &token, &give_back, None)
            .await;
        result.map(Some)
    }

    /// The ledger's view of a loaded product.
    pub async fn view(&self, product_id: ProductId) -> Result<LedgerView, AppError> {
        self.ensure_loaded(product_id).await?;
        self.ledger
            .view(product_id)
            .await?
            .ok_or(AppError::NotFound("product"))
    }

    /// The inventory: the database and ledger views side by side.
    pub async fn inventory(&self, product_id: ProductId) -> Result<InventoryDto, AppError> {
        let product = self
            .products
            .find(product_id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        let view = self.view(product_id).await?;
        let buckets = self.products.buckets(product_id).await?;
        let held = self.orders.held(product_id).await?;
        let ledger_sum = self.products.ledger_sum(product_id).await?;
        let db_available: i64 = buckets.iter().map(|b| b.available).sum();
        let cache_available: i64 = view.available.iter().sum();
        let in_flight: i64 = view.in_flight.iter().sum();
        Ok(InventoryDto {
            product_id: product_id.0,
            stock_total: product.stock_total,
            db_available,
            cache_available,
            held,
            in_flight,
            buckets: buckets
                .iter()
                .map(|b| BucketInventoryDto {
                    bucket_no: b.bucket_no,
                    db_available: b.available,
                    cache_available: view
                        .available
                        .get(b.bucket_no as usize)
                        .copied()
                        .unwrap_or(0),
                })
                .collect(),
            ledger_sum,
            consistent: ledger_sum == db_available
                && db_available + held == product.stock_total
                && cache_available + in_flight == db_available,
        })
    }

    /// `cache_available + in_flight − db_available` of a loaded product (0 = agree);
    /// 0 for a product that is not loaded.
    pub async fn drift(&self, product_id: ProductId) -> Result<i64, AppError> {
        let Some(view) = self.ledger.view(product_id).await? else {
            return Ok(0);
        };
        let db: i64 = self
            .products
            .buckets(product_id)
            .await?
            .iter()
            .map(|b| b.available)
            .sum();
        Ok(view.available.iter().sum::<i64>() + view.in_flight.iter().sum::<i64>() - db)
    }

    /// Rewrites the ledger's view of the product from the database while it is
    /// suspended and idle. Returns the drift found before (ledger + in flight − DB).
    pub async fn reload(&self, product_id: ProductId) -> Result<i64, AppError> {
        let (before, db_available) = self
            .relay(product_id, "try the reconcile again", || async {
                let view = self.ledger.view(product_id).await?;
                Ok(view.map_or(0, |v| {
                    v.available.iter().sum::<i64>() + v.in_flight.iter().sum::<i64>()
                }))
            })
            .await?;
        let drift = before - db_available;
        if drift != 0 {
            tracing::warn!(
                product.id = product_id.0,
                drift,
                "stock ledger drift repaired from the database"
            );
        }
        Ok(drift)
    }

    /// Re-lays the product's unsold units over `count` buckets live: suspends it (new
    /// orders wait briefly or get 503), waits for everything in flight, re-splits in
    /// the database, reloads the ledger from it and resumes.
    pub async fn rebucket(
        &self,
        product_id: ProductId,
        count: u32,
        now: DateTime<Utc>,
    ) -> Result<flash_sale_domain::product::Product, AppError> {
        let (product, _) = self
            .relay(product_id, "try again", || async {
                Ok(self.products.rebucket(product_id, count, now).await?)
            })
            .await?;
        Ok(product)
    }

    /// The re-lay protocol of reconcile and re-arrangement: under the product's load
    /// lock, suspend it and wait until nothing is in flight (else 503, `retry` telling
    /// what to do), run `work`, rewrite the ledger from the database, resume and clear
    /// the sold-out flag. Returns `work`'s value and the units the database had
    /// available when the ledger was loaded.
    async fn relay<T, F, Fut>(
        &self,
        product_id: ProductId,
        retry: &str,
        work: F,
    ) -> Result<(T, i64), AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        self.ensure_loaded(product_id).await?;
        let lease = self.load_lock(product_id).await?;
        let result = async {
            if !self.ledger.suspend(product_id, RELOAD_WAIT).await? {
                self.ledger.resume(product_id).await?;
                return Err(AppError::Unavailable(format!(
                    "operations in progress did not finish; {retry}"
                )));
            }
            let result = async {
                let value = work().await?;
                let (buckets, quotas, in_flight) = self.database_state(product_id).await?;
                self.ledger
                    .load(product_id, &buckets, &quotas, &in_flight)
                    .await?;
                Ok((value, buckets.iter().map(|b| b.available).sum()))
            }
            .await;
            self.ledger.resume(product_id).await?;
            self.clear_sold_out(product_id).await;
            result
        }
        .await;
        self.unlock(&lease).await;
        result
    }
}

/// The warm-up job: every product of every online event is in the stock ledger before
/// buyers arrive — at start-up, and again on each run for events that went online
/// elsewhere.
pub struct StockWarmUpJobExe {
    events: Arc<dyn flash_sale_domain::gateway::EventGateway>,
    products: Arc<dyn ProductGateway>,
    stock: Arc<StockService>,
}

impl StockWarmUpJobExe {
    /// Built from its collaborators.
    pub fn new(
        events: Arc<dyn flash_sale_domain::gateway::EventGateway>,
        products: Arc<dyn ProductGateway>,
        stock: Arc<StockService>,
    ) -> Self {
        Self {
            events,
            products,
            stock,
        }
    }

    /// Loads what is missing; returns how many products are loaded.
    pub async fn execute(&self) -> Result<usize, AppError> {
        let ids = self.online_products().await?;
        Ok(self.stock.warm(ids).await)
    }

    /// Every product of every online event.
    async fn online_products(&self) -> Result<Vec<ProductId>, AppError> {
        let mut ids = Vec::new();
        let mut page = 1;
        loop {
            let request = flash_sale_domain::page::PageRequest {
                page,
                page_size: 100,
            };
            let events = self
                .events
                .list(Some(flash_sale_domain::event::EventStatus::Online), request)
                .await?;
            for event in &events.items {
                let products = self.products.list_for_event(event.id).await?;
                ids.extend(products.iter().map(|p| p.id));
            }
            if request.offset() + request.limit() >= events.total {
                return Ok(ids);
            }
            page += 1;
        }
    }
}

/// The periodic reconcile: every loaded product of an online event whose stock ledger
/// disagrees with the database twice in a row (not just mid-order) is rewritten from
/// the database.
pub struct StockReconcileJobExe {
    warm: StockWarmUpJobExe,
}

/// How long a disagreement must last before the job repairs it.
const DRIFT_CONFIRM: Duration = Duration::from_millis(300);

impl StockReconcileJobExe {
    /// Built from its collaborators.
    pub fn new(
        events: Arc<dyn flash_sale_domain::gateway::EventGateway>,
        products: Arc<dyn ProductGateway>,
        stock: Arc<StockService>,
    ) -> Self {
        Self {
            warm: StockWarmUpJobExe::new(events, products, stock),
        }
    }

    /// Checks every product of the online events; returns how many were repaired.
    pub async fn execute(&self) -> Result<usize, AppError> {
        let mut repaired = 0;
        for id in self.warm.online_products().await? {
            if self.warm.stock.drift(id).await? == 0 {
                continue;
            }
            tokio::time::sleep(DRIFT_CONFIRM).await;
            if self.warm.stock.drift(id).await? != 0 {
                self.warm.stock.reload(id).await?;
                repaired += 1;
            }
        }
        Ok(repaired)
    }
}
