//! The ordering strategies (DESIGN §4): one trait, one implementation per way of
//! taking orders, chosen by an exhaustive `match` on [`Strategy`] — a new strategy
//! does not compile until it has an implementation here.

mod queued;
mod sync;

use async_trait::async_trait;
use flash_sale_client::{OrderDto, PlacementDto};
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::event::Event;
use flash_sale_domain::gateway::{HoldKind, Reservation, ReserveRequest};
use flash_sale_domain::order::{IdempotencyKey, Order, OrderError, OrderRequest};
use flash_sale_domain::placement::Placement;
use flash_sale_domain::product::{PerUserLimit, Product};
use flash_sale_domain::{Strategy, UserId};

pub use queued::AsyncOrdering;
pub use sync::SyncOrdering;

use crate::assembler;
use crate::error::AppError;
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

/// Every strategy's implementation.
pub struct Strategies {
    sync: SyncOrdering,
    queued: AsyncOrdering,
}

impl Strategies {
    /// The implementations: `sync` (which `buckets` shares: its difference lives in
    /// the product's bucket layout) and `async`.
    pub fn new(sync: SyncOrdering, queued: AsyncOrdering) -> Self {
        Self { sync, queued }
    }

    /// The implementation of `strategy`.
    pub fn of(&self, strategy: Strategy) -> &dyn OrderingStrategy {
        match strategy {
            Strategy::Sync | Strategy::Buckets => &self.sync,
            Strategy::Async => &self.queued,
        }
    }
}

/// Reserves the request's units and the buyer's quota in the stock ledger under
/// `token`; where the units came from, or the refusal as an error.
pub(crate) async fn reserve(
    stock: &StockService,
    ctx: &PlaceContext<'_>,
    token: &str,
    kind: HoldKind,
    placement: Option<&Placement>,
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
            placement,
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
        Reservation::Backlogged { lag } => Err(AppError::domain(OrderError::QueueBehind { lag })),
    }
}
