//! Wiring: the ports the application is given, its settings, and every executor built
//! from them once.

use std::sync::Arc;
use std::time::Duration;

use flash_sale_domain::Chain;
use flash_sale_domain::gateway::{
    Clock, EventGateway, LockGateway, Notice, NoticeBus, OrderGateway, PlacementGateway,
    PlacementQueue, ProductGateway, SharedCache, StockLedger, TallyGateway,
};

use crate::catalogue::{CacheBackends, CatalogueService, CatalogueSettings};
use crate::console::{AttemptCounter, ConsoleFeed, ConsolePorts};
use crate::error::AppError;
use crate::event::{
    AdminViews, EventCreateCmdExe, EventGetQryExe, EventListQryExe, EventPatchCmdExe,
    EventStatusCmdExe,
};
use crate::order::{
    AdminOrderListQryExe, AsyncOrdering, OrderCancelCmdExe, OrderExpireJobExe, OrderGetQryExe,
    OrderListQryExe, OrderPayCmdExe, PlaceOrderCmdExe, PlacementConsumeCmdExe, PlacementGetQryExe,
    PlacementSweepJobExe, Strategies, SyncOrdering,
};
use crate::policy::OrderingPolicy;
use crate::product::{
    InventoryQryExe, LedgerQryExe, ProductBucketsCmdExe, ProductCreateCmdExe, ProductPatchCmdExe,
    ProductStatusCmdExe, ProductStockCmdExe, ReconcileCmdExe,
};
use crate::stock::{
    StockPorts, StockReconcileJobExe, StockRecoveryJobExe, StockService, StockWarmUpJobExe,
};

/// The gateways the application runs on; `start` picks the implementations.
#[derive(Clone)]
pub struct Ports {
    /// Events.
    pub events: Arc<dyn EventGateway>,
    /// Products, stock buckets and the ledger.
    pub products: Arc<dyn ProductGateway>,
    /// Orders, purchase quotas.
    pub orders: Arc<dyn OrderGateway>,
    /// Async placements.
    pub placements: Arc<dyn PlacementGateway>,
    /// The task queue of the async strategy.
    pub queue: Arc<dyn PlacementQueue>,
    /// The hot-path stock and quota view.
    pub stock: Arc<dyn StockLedger>,
    /// Named locks (in process, or across instances).
    pub locks: Arc<dyn LockGateway>,
    /// The shared cache level; `None` in embedded mode.
    pub shared_cache: Option<Arc<dyn SharedCache>>,
    /// Cross-instance notices; `None` in embedded mode.
    pub bus: Option<Arc<dyn NoticeBus>>,
    /// The console's attempt counts (shared by every instance with Redis).
    pub tally: Arc<dyn TallyGateway>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

/// Application settings (a slice of the service's configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long an unpaid order holds its units.
    pub payment_timeout: Duration,
    /// A hold or return in progress for longer than this has lost its request.
    pub recovery_after: Duration,
    /// The catalogue cache.
    pub catalogue: CatalogueSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            payment_timeout: Duration::from_mins(15),
            recovery_after: Duration::from_secs(30),
            catalogue: CatalogueSettings::default(),
        }
    }
}

/// Every executor, built once and shared by the adapters.
pub struct Executors {
    /// `POST /admin/events`.
    pub event_create: EventCreateCmdExe,
    /// `PATCH /admin/events/{id}`.
    pub event_update: EventPatchCmdExe,
    /// `POST /admin/events/{id}/online|offline`.
    pub event_status: EventStatusCmdExe,
    /// `GET /admin/events`.
    pub event_list: EventListQryExe,
    /// `GET /admin/events/{id}`.
    pub event_get: EventGetQryExe,
    /// `POST /admin/events/{id}/products`.
    pub product_create: ProductCreateCmdExe,
    /// `PATCH /admin/products/{id}`.
    pub product_update: ProductPatchCmdExe,
    /// `POST /admin/products/{id}/online|offline`.
    pub product_status: ProductStatusCmdExe,
    /// `POST /admin/products/{id}/stock`.
    pub product_stock: ProductStockCmdExe,
    /// `POST /admin/products/{id}/buckets`.
    pub product_buckets: ProductBucketsCmdExe,
    /// `GET /admin/products/{id}/ledger`.
    pub ledger: LedgerQryExe,
    /// `GET /admin/products/{id}/inventory`.
    pub inventory: InventoryQryExe,
    /// `POST /admin/products/{id}/reconcile`.
    pub reconcile: ReconcileCmdExe,
    /// `GET /admin/orders`.
    pub admin_orders: AdminOrderListQryExe,
    /// `POST /orders`.
    pub order_place: PlaceOrderCmdExe,
    /// `POST /orders/{id}/pay`.
    pub order_pay: OrderPayCmdExe,
    /// `POST /orders/{id}/cancel`.
    pub order_cancel: OrderCancelCmdExe,
    /// `GET /orders/{id}`.
    pub order_get: OrderGetQryExe,
    /// `GET /orders`.
    pub order_list: OrderListQryExe,
    /// The expiry job.
    pub order_expire: OrderExpireJobExe,
    /// The stock warm-up job.
    pub stock_warm_up: StockWarmUpJobExe,
    /// The buyer's catalogue reads.
    pub catalogue: Arc<CatalogueService>,
    /// The stock ledger service.
    pub stock: Arc<StockService>,
    /// The strategy policy (reloadable).
    pub policy: Arc<OrderingPolicy>,
    /// The periodic stock reconcile.
    pub stock_reconcile: StockReconcileJobExe,
    /// The recovery of holds whose request is gone.
    pub stock_recovery: StockRecoveryJobExe,
    /// `GET /placements/{id}`.
    pub placement_get: PlacementGetQryExe,
    /// The async consumer.
    pub placement_consume: Arc<PlacementConsumeCmdExe>,
    /// The sweeper of placements queued for too long.
    pub placement_sweep: PlacementSweepJobExe,
    /// A new ordering configuration, live.
    pub strategy_switch: crate::switch::StrategySwitchCmdExe,
    /// Order attempts per product, for the console.
    pub attempts: Arc<AttemptCounter>,
    /// `GET /admin/stream`.
    pub console: ConsoleFeed,
    locks: Arc<dyn LockGateway>,
}

impl Executors {
    /// Runs `job` only if this instance wins the job's lock for this round (one
    /// instance runs each round); `None` when another instance has it.
    pub async fn as_leader<T>(
        &self,
        job: &str,
        ttl: Duration,
        run: impl Future<Output = Result<T, AppError>>,
    ) -> Result<Option<T>, AppError> {
        let Some(lease) = self.locks.try_acquire(&format!("job:{job}"), ttl).await? else {
            return Ok(None);
        };
        // The lease is renewed while the round runs, so a long round keeps it.
        let renewing = async {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match self.locks.renew(&lease, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            job,
                            "a job round lost its lease; another instance may run the next one"
                        );
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        tracing::warn!(job, error = %Chain(&e), "could not renew a job's lease");
                    }
                }
            }
        };
        let result = tokio::select! {
            result = run => result,
            () = renewing => unreachable!("the renewal loop never ends"),
        };
        if let Err(e) = self.locks.release(&lease).await {
            tracing::debug!(error = %Chain(&e), "job lock release failed; it expires");
        }
        result.map(Some)
    }

    /// Acts on a notice from any instance (this one included): drops local cache
    /// entries and sold-out flags.
    pub async fn apply_notice(&self, notice: Notice) {
        match notice {
            Notice::SoldOutCleared(product) => self.stock.forget_sold_out(product),
            other => self.catalogue.forget(other).await,
        }
    }

    /// Builds every executor over `ports`.
    #[expect(
        clippy::too_many_lines,
        reason = "the one place that builds every executor"
    )]
    pub fn new(ports: &Ports, settings: &Settings, policy: Arc<OrderingPolicy>) -> Self {
        let catalogue = Arc::new(CatalogueService::new(
            ports.events.clone(),
            ports.products.clone(),
            ports.clock.clone(),
            policy.clone(),
            CacheBackends {
                shared: ports.shared_cache.clone(),
                locks: ports.locks.clone(),
                bus: ports.bus.clone(),
            },
            &settings.catalogue,
        ));
        let stock = Arc::new(StockService::new(StockPorts {
            ledger: ports.stock.clone(),
            products: ports.products.clone(),
            orders: ports.orders.clone(),
            placements: ports.placements.clone(),
            locks: ports.locks.clone(),
            bus: ports.bus.clone(),
            clock: ports.clock.clone(),
            recovery_after: settings.recovery_after,
        }));
        let strategies = Strategies::new(
            SyncOrdering::new(
                ports.orders.clone(),
                stock.clone(),
                ports.clock.clone(),
                settings.payment_timeout,
            ),
            AsyncOrdering::new(
                ports.placements.clone(),
                ports.queue.clone(),
                stock.clone(),
                ports.clock.clone(),
            ),
        );
        let placement_consume = Arc::new(PlacementConsumeCmdExe::new(
            ports.placements.clone(),
            ports.queue.clone(),
            catalogue.clone(),
            stock.clone(),
            ports.clock.clone(),
            settings.payment_timeout,
        ));
        let admin = AdminViews::new(ports, policy.clone());
        let attempts = Arc::new(AttemptCounter::new(
            ports.tally.clone(),
            ports.clock.clone(),
        ));
        let console = ConsoleFeed::new(ConsolePorts {
            events: ports.events.clone(),
            products: ports.products.clone(),
            tally: ports.tally.clone(),
            stock: stock.clone(),
            policy: policy.clone(),
            clock: ports.clock.clone(),
        });
        let (orders, clock) = (&ports.orders, &ports.clock);
        Self {
            event_create: EventCreateCmdExe::new(ports, admin.clone()),
            event_update: EventPatchCmdExe::new(ports, admin.clone(), catalogue.clone()),
            event_status: EventStatusCmdExe::new(
                ports,
                admin.clone(),
                catalogue.clone(),
                stock.clone(),
            ),
            event_list: EventListQryExe::new(ports, admin.clone()),
            event_get: EventGetQryExe::new(ports, admin.clone()),
            product_create: ProductCreateCmdExe::new(ports, admin.clone(), catalogue.clone()),
            product_update: ProductPatchCmdExe::new(ports, admin.clone(), catalogue.clone()),
            product_status: ProductStatusCmdExe::new(ports, admin.clone(), catalogue.clone()),
            product_stock: ProductStockCmdExe::new(
                ports,
                admin.clone(),
                catalogue.clone(),
                stock.clone(),
            ),
            product_buckets: ProductBucketsCmdExe::new(admin, catalogue.clone(), stock.clone()),
            ledger: LedgerQryExe::new(ports),
            inventory: InventoryQryExe::new(stock.clone()),
            reconcile: ReconcileCmdExe::new(stock.clone()),
            admin_orders: AdminOrderListQryExe::new(orders.clone()),
            order_place: PlaceOrderCmdExe::new(
                orders.clone(),
                ports.placements.clone(),
                catalogue.clone(),
                stock.clone(),
                strategies,
                ports.locks.clone(),
                attempts.clone(),
            ),
            order_pay: OrderPayCmdExe::new(orders.clone(), stock.clone(), clock.clone()),
            order_cancel: OrderCancelCmdExe::new(orders.clone(), stock.clone(), clock.clone()),
            order_get: OrderGetQryExe::new(orders.clone()),
            order_list: OrderListQryExe::new(orders.clone()),
            order_expire: OrderExpireJobExe::new(orders.clone(), stock.clone(), clock.clone()),
            stock_warm_up: StockWarmUpJobExe::new(
                ports.events.clone(),
                ports.products.clone(),
                stock.clone(),
            ),
            stock_reconcile: StockReconcileJobExe::new(
                ports.events.clone(),
                ports.products.clone(),
                stock.clone(),
            ),
            stock_recovery: StockRecoveryJobExe::new(
                ports.events.clone(),
                ports.products.clone(),
                stock.clone(),
            ),
            placement_get: PlacementGetQryExe::new(ports.placements.clone()),
            placement_sweep: PlacementSweepJobExe::new(
                ports.placements.clone(),
                placement_consume.clone(),
                ports.clock.clone(),
            ),
            placement_consume,
            strategy_switch: crate::switch::StrategySwitchCmdExe::new(
                ports.events.clone(),
                ports.products.clone(),
                stock.clone(),
                catalogue.clone(),
                policy.clone(),
            ),
            attempts,
            console,
            locks: ports.locks.clone(),
            catalogue,
            stock,
            policy,
        }
    }
}
