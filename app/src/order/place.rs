//! `POST /orders`: placing an order.
//!
//! Every strategy starts the same way: idempotency-key replay, sale checks from the
//! catalogue cache, the per-user limit, the local sold-out flag. Then the event's
//! [`OrderingStrategy`] takes over. Callers must let `execute` run to completion (the
//! HTTP adapter runs every write in a task of its own): a reservation is settled by the
//! same call that made it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flash_sale_client::{OrderDto, OrderPlaceCmd, PlacementDto};
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::event::Event;
use flash_sale_domain::gateway::{
    Clock, GatewayError, HoldKind, LockGateway, LockLease, OrderGateway, PlacementGateway,
    Reservation, ReserveRequest, Settlement,
};
use flash_sale_domain::order::{
    IdempotencyKey, NewOrder, Order, OrderError, OrderId, OrderRequest,
};
use flash_sale_domain::product::{PerUserLimit, Product, ProductId};
use flash_sale_domain::{Strategy, UserId};

use super::idempotency::KeyLocks;
use crate::Caller;
use crate::assembler;
use crate::catalogue::CatalogueService;
use crate::error::AppError;
use crate::policy::OrderingPolicy;
use crate::stock::StockService;

/// The answer to `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceOrderOutcome {
    /// 201: a new order.
    Created(OrderDto),
    /// 201: the order an earlier request with the same idempotency key made.
    Replayed(OrderDto),
    /// 202: a queued placement (async).
    Accepted(PlacementDto),
}

/// What a strategy needs to place one order.
#[derive(Debug, Clone, Copy)]
pub struct PlaceContext<'a> {
    /// The buyer.
    pub user: &'a UserId,
    /// The event, on sale.
    pub event: &'a Event,
    /// The product, online.
    pub product: &'a Product,
    /// What was asked for.
    pub request: OrderRequest,
    /// The buyer's idempotency key.
    pub key: Option<&'a IdempotencyKey>,
    /// The strategy in force (recorded on the order).
    pub strategy: Strategy,
}

/// One way of taking orders (DESIGN §4).
#[async_trait]
pub trait OrderingStrategy: Send + Sync {
    /// Places the order after the common checks passed.
    async fn place(&self, ctx: PlaceContext<'_>) -> Result<PlaceOrderOutcome, AppError>;
}

/// The same key again: the first answer, or `IDEMPOTENCY_KEY_REUSED` when the request
/// differs.
pub(crate) fn replay(order: &Order, request: &OrderRequest) -> Result<PlaceOrderOutcome, AppError> {
    if order.request_fingerprint == request.fingerprint() {
        Ok(PlaceOrderOutcome::Replayed(assembler::order_dto(order)))
    } else {
        Err(AppError::domain(OrderError::IdempotencyKeyReused))
    }
}

/// Reserves the request's units and the buyer's quota in the stock ledger under
/// `token`; where the units came from, or the refusal as an error.
pub(crate) async fn reserve(
    stock: &StockService,
    ctx: &PlaceContext<'_>,
    token: &str,
    kind: HoldKind,
) -> Result<Allocation, AppError> {
    let limit = ctx.product.per_user_limit;
    let reservation = stock
        .reserve(ReserveRequest {
            product_id: ctx.product.id,
            user_id: ctx.user,
            quantity: ctx.request.quantity,
            limit: limit.get(),
            token,
            kind,
        })
        .await?;
    count_bucket(ctx, &reservation);
    reserved_allocation(reservation, limit)
}

/// Per-bucket metrics of one reservation: where units were taken
/// (`flash_sale_bucket_reservations_total`, by main bucket), taken away from the
/// buyer's home bucket after probing (`flash_sale_bucket_probes_total`, by the bucket
/// that served), and the home bucket found short (`flash_sale_bucket_misses_total`, by
/// home bucket).
fn count_bucket(ctx: &PlaceContext<'_>, reservation: &Reservation) {
    let home = flash_sale_domain::stock::home_bucket(ctx.user, ctx.product.bucket_count.get());
    match reservation {
        Reservation::Reserved { allocation, .. } => {
            let bucket_no = allocation.bucket_no();
            metrics::counter!("flash_sale_bucket_reservations_total", "bucket" => bucket_no.to_string())
                .increment(1);
            if bucket_no != home || allocation.is_split() {
                metrics::counter!("flash_sale_bucket_probes_total", "bucket" => bucket_no.to_string())
                    .increment(1);
                metrics::counter!("flash_sale_bucket_misses_total", "bucket" => home.to_string())
                    .increment(1);
            }
        }
        Reservation::SoldOut { .. } => {
            metrics::counter!("flash_sale_bucket_misses_total", "bucket" => home.to_string())
                .increment(1);
        }
        _ => {}
    }
}

/// Where a reservation took its units from; the refusal as an error otherwise.
fn reserved_allocation(
    reservation: Reservation,
    limit: PerUserLimit,
) -> Result<Allocation, AppError> {
    match reservation {
        Reservation::Reserved { allocation, .. } => Ok(allocation),
        Reservation::SoldOut { .. } => Err(AppError::domain(OrderError::SoldOut)),
        Reservation::LimitExceeded { .. } => Err(AppError::domain(OrderError::LimitExceeded {
            limit: limit.get(),
        })),
        Reservation::NotLoaded | Reservation::Suspended => {
            Err(AppError::Unavailable("stock is being loaded".into()))
        }
    }
}

/// `sync` (and `buckets`, whose difference lives in the product's bucket layout):
/// reserve stock and quota in the ledger, then one database transaction; any failure
/// after the reservation releases it.
pub struct SyncOrdering {
    orders: Arc<dyn OrderGateway>,
    stock: Arc<StockService>,
    clock: Arc<dyn Clock>,
    payment_timeout: chrono::Duration,
}

impl SyncOrdering {
    /// A strategy writing through `orders`.
    pub fn new(
        orders: Arc<dyn OrderGateway>,
        stock: Arc<StockService>,
        clock: Arc<dyn Clock>,
        payment_timeout: Duration,
    ) -> Self {
        Self {
            orders,
            stock,
            clock,
            payment_timeout: chrono::Duration::from_std(payment_timeout)
                .unwrap_or(chrono::Duration::minutes(15)),
        }
    }
}

#[async_trait]
impl OrderingStrategy for SyncOrdering {
    #[tracing::instrument(skip_all, fields(product.id = ctx.product.id.0, order.quantity = ctx.request.quantity))]
    async fn place(&self, ctx: PlaceContext<'_>) -> Result<PlaceOrderOutcome, AppError> {
        let limit = ctx.product.per_user_limit;
        let id = OrderId::generate();
        let allocation = reserve(&self.stock, &ctx, id.as_str(), HoldKind::Order).await?;
        let settle = |settlement| {
            self.stock
                .settle(ctx.product.id, id.as_str(), &allocation, settlement)
        };
        let order = match Order::place(NewOrder {
            id: id.clone(),
            user_id: ctx.user.clone(),
            event_id: ctx.event.id,
            request: ctx.request,
            allocation: allocation.clone(),
            unit_price: ctx.product.pricing.flash(),
            strategy: ctx.strategy,
            idempotency_key: ctx.key.cloned(),
            placement_id: None,
            now: self.clock.now(),
            payment_timeout: self.payment_timeout,
        }) {
            Ok(order) => order,
            Err(e) => {
                settle(Settlement::Released).await;
                return Err(AppError::domain(e));
            }
        };
        let written = match self.orders.place(&order, limit).await {
            // The commit's answer was lost: was the order written? Ask before answering.
            Err(GatewayError::Unavailable(e)) => {
                match super::confirm(|| async { Ok(self.orders.find(&order.id).await?.is_some()) })
                    .await
                {
                    Some(true) => Ok(()),
                    Some(false) => Err(GatewayError::Unavailable(e)),
                    None => {
                        // Nobody can tell now: the hold stays for the recovery job, which
                        // asks the database later and commits or releases it.
                        tracing::warn!(order.id = %order.id, error = %e, "an order's commit could not be confirmed; the recovery job settles its hold");
                        return Err(AppError::Unavailable(
                        "the order could not be confirmed; retry with the same Idempotency-Key to learn its outcome".into(),
                    ));
                    }
                }
            }
            other => other,
        };
        match written {
            Ok(()) => {
                settle(Settlement::Committed).await;
                Ok(PlaceOrderOutcome::Created(assembler::order_dto(&order)))
            }
            Err(error) => {
                settle(Settlement::Released).await;
                match (error, ctx.key) {
                    (GatewayError::Duplicate("idempotency_key"), Some(key)) => {
                        let first = self
                            .orders
                            .find_by_idempotency_key(ctx.user, key)
                            .await?
                            .ok_or_else(|| {
                                AppError::Unavailable("the first order is not visible yet".into())
                            })?;
                        replay(&first, &ctx.request)
                    }
                    (GatewayError::Rejected(rejected), _) => {
                        tracing::warn!(error = %rejected, "the database refused what the stock ledger reserved; reconcile if it repeats");
                        Err(AppError::Domain(rejected))
                    }
                    (error, _) => Err(error.into()),
                }
            }
        }
    }
}

struct PlaceCore {
    orders: Arc<dyn OrderGateway>,
    placements: Arc<dyn PlacementGateway>,
    catalogue: Arc<CatalogueService>,
    stock: Arc<StockService>,
    policy: Arc<OrderingPolicy>,
    strategies: HashMap<Strategy, Arc<dyn OrderingStrategy>>,
    key_locks: KeyLocks,
    locks: Arc<dyn LockGateway>,
}

/// How long a keyed request's lock lives (longer than any request).
const KEY_LOCK_TTL: Duration = Duration::from_secs(30);
/// How long a keyed request waits for another one with the same key, on any instance.
const KEY_LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// `POST /orders`.
pub struct PlaceOrderCmdExe {
    core: PlaceCore,
}

fn outcome_label(result: &Result<PlaceOrderOutcome, AppError>) -> &'static str {
    match result {
        Ok(PlaceOrderOutcome::Created(_)) => "created",
        Ok(PlaceOrderOutcome::Replayed(_)) => "replayed",
        Ok(PlaceOrderOutcome::Accepted(_)) => "queued",
        Err(AppError::Domain(e)) => match e.kind() {
            flash_sale_domain::ErrorKind::SoldOut => "sold_out",
            flash_sale_domain::ErrorKind::LimitExceeded => "limit_exceeded",
            flash_sale_domain::ErrorKind::NotOnSale => "not_on_sale",
            flash_sale_domain::ErrorKind::Unavailable => "unavailable",
            _ => "rejected",
        },
        Err(AppError::NotFound(_)) => "not_found",
        Err(AppError::Unavailable(_)) => "unavailable",
        Err(AppError::Internal(_)) => "error",
    }
}

impl PlaceOrderCmdExe {
    /// Built from its collaborators; `strategies` maps every strategy to its
    /// implementation.
    pub fn new(
        orders: Arc<dyn OrderGateway>,
        placements: Arc<dyn PlacementGateway>,
        catalogue: Arc<CatalogueService>,
        stock: Arc<StockService>,
        strategies: HashMap<Strategy, Arc<dyn OrderingStrategy>>,
        locks: Arc<dyn LockGateway>,
    ) -> Self {
        let policy = catalogue.policy().clone();
        Self {
            core: PlaceCore {
                orders,
                placements,
                catalogue,
                stock,
                policy,
                strategies,
                key_locks: KeyLocks::default(),
                locks,
            },
        }
    }

    /// Places an order for `caller`; `key` is the raw `Idempotency-Key` header.
    pub async fn execute(
        &self,
        caller: &Caller,
        cmd: OrderPlaceCmd,
        key: Option<&str>,
    ) -> Result<PlaceOrderOutcome, AppError> {
        let key = key.map(IdempotencyKey::parse).transpose()?;
        let request = OrderRequest {
            product_id: ProductId(cmd.product_id),
            quantity: cmd.quantity,
        };
        self.core.place(caller.user_id.clone(), request, key).await
    }
}

impl PlaceCore {
    async fn place(
        &self,
        user: UserId,
        request: OrderRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOrderOutcome, AppError> {
        let Some(key) = key else {
            return self.place_once(&user, request, None).await;
        };
        // One request per key at a time: in this process, then across instances (a
        // duplicate sent to another instance waits here and replays the first answer).
        let _in_flight = self.key_locks.lock(&user, &key).await;
        let lease = self.key_lease(&user, &key).await?;
        let result = self.place_once(&user, request, Some(key)).await;
        if let Err(e) = self.locks.release(&lease).await {
            tracing::debug!(error = %e, "key lock release failed; it expires");
        }
        result
    }

    /// Takes the key's lock shared by every instance, waiting for another holder.
    async fn key_lease(&self, user: &UserId, key: &IdempotencyKey) -> Result<LockLease, AppError> {
        let name = format!(
            "idem:{}:{}:{}",
            user.as_str().len(),
            user.as_str(),
            key.as_str()
        );
        crate::locks::acquire_within(&*self.locks, &name, KEY_LOCK_TTL, KEY_LOCK_PATIENCE)
            .await?
            .ok_or_else(|| {
                AppError::Unavailable(
                    "a request with this Idempotency-Key is still in progress; try again".into(),
                )
            })
    }

    async fn place_once(
        &self,
        user: &UserId,
        request: OrderRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOrderOutcome, AppError> {
        if let Some(key) = &key
            && let Some(result) = self.replay(user, key, &request).await?
        {
            return result;
        }
        let (event, entry) = self.sale_context(request.product_id).await?;
        let strategy = self.policy.effective(&event);
        let result = self
            .checked_place(
                user,
                &event,
                &entry.product,
                request,
                key.as_ref(),
                strategy,
            )
            .await;
        count(strategy, &result);
        result
    }

    /// The first answer to this key: a 202 placement (as it is now) when the first
    /// request made one, else the 201 order.
    async fn replay(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        request: &OrderRequest,
    ) -> Result<Option<Result<PlaceOrderOutcome, AppError>>, AppError> {
        let order = self.orders.find_by_idempotency_key(user, key).await?;
        if order.as_ref().is_none_or(|o| o.placement_id.is_some())
            && let Some(result) =
                super::placement::placement_replay(&self.placements, user, key, request).await?
        {
            count(Strategy::Async, &result);
            return Ok(Some(result));
        }
        Ok(order.map(|first| {
            let result = replay(&first, request);
            count(first.strategy, &result);
            result
        }))
    }

    async fn checked_place(
        &self,
        user: &UserId,
        event: &Event,
        product: &Product,
        request: OrderRequest,
        key: Option<&IdempotencyKey>,
        strategy: Strategy,
    ) -> Result<PlaceOrderOutcome, AppError> {
        let limit = product.per_user_limit.get();
        if request.quantity > limit {
            return Err(AppError::domain(OrderError::LimitExceeded { limit }));
        }
        if self.stock.is_sold_out(product.id) {
            return Err(AppError::domain(OrderError::SoldOut));
        }
        if crate::budget::exhausted() {
            return Err(AppError::Unavailable(
                "the request ran out of time before anything was reserved; try again".into(),
            ));
        }
        let ordering = self.strategies.get(&strategy).ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("no implementation for {strategy}"))
        })?;
        ordering
            .place(PlaceContext {
                user,
                event,
                product,
                request,
                key,
                strategy,
            })
            .await
    }

    async fn sale_context(
        &self,
        product_id: ProductId,
    ) -> Result<(Arc<Event>, Arc<crate::catalogue::ProductEntry>), AppError> {
        let entry = self
            .catalogue
            .product(product_id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        let event = self
            .catalogue
            .event(entry.product.event_id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        let now = self.catalogue.now();
        if !event.is_visible() {
            return Err(AppError::domain(OrderError::NotOnSale(
                "the event is not online",
            )));
        }
        if !event.is_on_sale(now) {
            return Err(AppError::domain(OrderError::NotOnSale(
                "the event is outside its sale window",
            )));
        }
        if !entry.product.is_online() {
            return Err(AppError::domain(OrderError::NotOnSale(
                "the product is offline",
            )));
        }
        Ok((event, entry))
    }
}

fn count(strategy: Strategy, result: &Result<PlaceOrderOutcome, AppError>) {
    metrics::counter!(
        "flash_sale_order_attempts_total",
        "strategy" => strategy.as_str(),
        "outcome" => outcome_label(result),
    )
    .increment(1);
}
