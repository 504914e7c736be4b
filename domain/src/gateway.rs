//! Ports: what the application needs from the outside world. Infrastructure
//! implements them, named by technology (`SeaOrmEventGateway`, …).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::event::{Event, EventId, EventStatus, NewEvent};
use crate::ledger::{LedgerEntry, LedgerReason};
use crate::order::{IdempotencyKey, Order, OrderError, OrderId, OrderStatus};
use crate::page::{Page, PageRequest};
use crate::placement::{Placement, PlacementId};
use crate::product::{NewProduct, PerUserLimit, Product, ProductId};
use crate::stock::{BucketDelta, StockBucket};
use crate::user::UserId;

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A business rule the storage enforced (a conditional update found too little
    /// stock, a unique key was taken, …).
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key is taken; the name says which (`idempotency_key`,
    /// `transaction_id`, `placement_id`).
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// The backend cannot answer now (connection lost, timeout, pool exhausted).
    /// Nothing was changed; the call is safe to retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or corrupt data.
    #[error("internal: {0}")]
    Internal(String),
}

impl GatewayError {
    /// A rejection from a domain error.
    pub fn rejected(error: impl Into<DomainError>) -> Self {
        Self::Rejected(error.into())
    }
}

/// The current time, so that tests can move it.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// Stores events.
#[async_trait]
pub trait EventGateway: Send + Sync {
    /// Stores a new `draft` event created at `now`.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn insert(&self, event: NewEvent, now: DateTime<Utc>) -> Result<Event, GatewayError>;

    /// The event, if it exists.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn find(&self, id: EventId) -> Result<Option<Event>, GatewayError>;

    /// Events newest first, optionally only those in `status`.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn list(
        &self,
        status: Option<EventStatus>,
        page: PageRequest,
    ) -> Result<Page<Event>, GatewayError>;

    /// Writes the event's fields back.
    ///
    /// # Errors
    /// `NotFound` when it does not exist; `Unavailable` when the database cannot be
    /// reached.
    async fn update(&self, event: &Event) -> Result<(), GatewayError>;
}

/// Stores products, their stock buckets and the inventory ledger.
#[async_trait]
pub trait ProductGateway: Send + Sync {
    /// Stores an `online` product, its buckets (stock split evenly) and one
    /// `stock_added` ledger row per bucket, in one transaction.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn insert(
        &self,
        product: NewProduct,
        now: DateTime<Utc>,
    ) -> Result<Product, GatewayError>;

    /// The product, if it exists.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn find(&self, id: ProductId) -> Result<Option<Product>, GatewayError>;

    /// The products of an event, by id.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn list_for_event(&self, event_id: EventId) -> Result<Vec<Product>, GatewayError>;

    /// How many products an event has.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn count_for_event(&self, event_id: EventId) -> Result<u64, GatewayError>;

    /// Writes the product's descriptive fields and status back (not its stock).
    ///
    /// # Errors
    /// `NotFound` when it does not exist; `Unavailable` when the database cannot be
    /// reached.
    async fn update(&self, product: &Product) -> Result<(), GatewayError>;

    /// The product's buckets, by number.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn buckets(&self, id: ProductId) -> Result<Vec<StockBucket>, GatewayError>;

    /// Σ `available` of each product's buckets (the DB view of unsold stock).
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn available(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, i64>, GatewayError>;

    /// Moves stock in and out of buckets in one transaction: each bucket's `total` and
    /// `available` by its delta (a removal only if that many are available), the
    /// product's `stock_total` by the sum, and one ledger row per bucket.
    ///
    /// # Errors
    /// `Rejected(NotEnoughUnsold)` when a bucket has fewer units available than it
    /// should give up (nothing changes); `NotFound`; `Unavailable`.
    async fn adjust_stock(
        &self,
        id: ProductId,
        deltas: &[BucketDelta],
        reason: LedgerReason,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<Product, GatewayError>;

    /// Re-lays the product's unsold units over `count` buckets (the live
    /// re-arrangement; call it while the product is suspended and idle): Σ `available`
    /// is split evenly over buckets `0..count`; each keeps its sold units (`total -
    /// available`). A bucket at or past `count` is folded into bucket `bucket_no %
    /// count`: its live orders move there with their units, so a later cancel returns
    /// them to a bucket that sells, and its row goes. One `rebalanced` ledger row per
    /// bucket whose availability changed; `bucket_count` becomes `count`. Sold units are
    /// never redistributed.
    ///
    /// # Errors
    /// `NotFound`; `Unavailable`; nothing changes on any error.
    async fn rebucket(
        &self,
        id: ProductId,
        count: u32,
        now: DateTime<Utc>,
    ) -> Result<Product, GatewayError>;

    /// The product's ledger rows, oldest first.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn ledger(
        &self,
        id: ProductId,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, GatewayError>;

    /// Σ `delta` of the product's ledger rows.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn ledger_sum(&self, id: ProductId) -> Result<i64, GatewayError>;
}

/// Which orders an admin lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only this product's.
    pub product_id: Option<ProductId>,
    /// Only in this status.
    pub status: Option<OrderStatus>,
}

/// Why an order gave its units back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The buyer cancelled it.
    Cancelled,
    /// It was not paid in time.
    Expired,
}

/// Stores orders. Every method that moves stock does it in one transaction together
/// with the bucket row, the purchase-quota row and a ledger row.
#[async_trait]
pub trait OrderGateway: Send + Sync {
    /// The order transaction: decrement the order's bucket only if it holds enough
    /// (`available >= quantity`), add the quantity to the buyer's purchase quota only
    /// if it stays within `limit`, insert the order and an `order_placed` ledger row.
    ///
    /// # Errors
    /// `Rejected(SoldOut)` or `Rejected(LimitExceeded)` when a guard says no;
    /// `Duplicate("idempotency_key")` or `Duplicate("placement_id")` when such an
    /// order exists; `Unavailable`. Nothing is written on any error.
    async fn place(&self, order: &Order, limit: PerUserLimit) -> Result<(), GatewayError>;

    /// The order, if it exists.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn find(&self, id: &OrderId) -> Result<Option<Order>, GatewayError>;

    /// The buyer's order made with this idempotency key, if any.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn find_by_idempotency_key(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, GatewayError>;

    /// A buyer's orders, newest first.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn list_for_user(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, GatewayError>;

    /// Orders matching `filter`, newest first.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn list(
        &self,
        filter: OrderFilter,
        page: PageRequest,
    ) -> Result<Page<Order>, GatewayError>;

    /// Writes a payment: only if the order is still `pending_payment` and unexpired at
    /// `order.paid_at`.
    ///
    /// # Errors
    /// `Duplicate("transaction_id")` when another order has that transaction id;
    /// `NotFound` when the order is no longer pending (re-read it); `Unavailable`.
    async fn pay(&self, order: &Order) -> Result<(), GatewayError>;

    /// Gives a `pending_payment` order's units back: status → cancelled/expired (an
    /// expiry only once `expires_at` has passed), bucket `available` and the buyer's
    /// quota back by its quantity, one ledger row. Exactly once: returns `false` when
    /// the order was no longer pending (someone else released it, or it was paid).
    ///
    /// # Errors
    /// `Unavailable`; nothing is written on any error.
    async fn release(
        &self,
        order: &Order,
        release: Release,
        now: DateTime<Utc>,
    ) -> Result<bool, GatewayError>;

    /// Up to `limit` `pending_payment` orders whose `expires_at` is at or before `now`.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn expired(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<Order>, GatewayError>;

    /// Σ quantity of a product's `pending_payment` and `paid` orders.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn held(&self, product_id: ProductId) -> Result<i64, GatewayError>;

    /// Every buyer's used quota of a product (the purchase-quota rows).
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn quotas(&self, product_id: ProductId) -> Result<Vec<(UserId, u32)>, GatewayError>;
}

/// A request to reserve units and quota in the stock ledger.
#[derive(Debug, Clone, Copy)]
pub struct ReserveRequest<'a> {
    /// The product.
    pub product_id: ProductId,
    /// The buyer.
    pub user_id: &'a UserId,
    /// Units.
    pub quantity: u32,
    /// The per-user limit in force.
    pub limit: u32,
    /// Names the reservation (the order or placement id): settling it twice, or
    /// reserving twice with it, changes nothing the second time.
    pub token: &'a str,
}

/// What a reservation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Units and quota are reserved in this bucket; `left` units remain in the product.
    Reserved {
        /// The bucket the units came from.
        bucket_no: u32,
        /// Units left in every bucket together.
        left: i64,
    },
    /// No bucket holds enough; `left` units remain in the product (0 = sold out).
    SoldOut {
        /// Units left in every bucket together.
        left: i64,
    },
    /// The buyer's quota would pass the limit; nothing was reserved.
    LimitExceeded {
        /// Units the buyer already holds.
        used: u32,
    },
    /// The ledger does not hold this product yet: load it from the database first.
    NotLoaded,
    /// The product's stock is being re-laid; try again shortly.
    Suspended,
}

/// A reservation still on its way to the database (a queued placement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The reservation's token (the placement id).
    pub token: String,
    /// The buyer.
    pub user_id: UserId,
    /// The reserved bucket.
    pub bucket_no: u32,
    /// Units.
    pub quantity: u32,
}

/// A product's stock as the stock ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerView {
    /// What each bucket would still sell, by bucket number.
    pub available: Vec<i64>,
    /// Units reserved but not yet written to the database, by bucket number.
    pub in_flight: Vec<i64>,
}

/// How a reservation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement<'a> {
    /// The order is in the database: the units stop being in flight.
    Committed,
    /// No order was written: the units and the buyer's quota go back.
    Released(&'a UserId),
}

/// The hot-path view of stock and per-user quotas (in-process, or Redis): reservations
/// happen here first, atomically for stock and quota, and the database confirms them.
///
/// Every operation that moves stock in both places is bracketed so that
/// [`StockLedger::suspend`] can wait for a quiet moment: a reservation until it is
/// settled, a return (cancel, expiry, stock change) between
/// [`StockLedger::begin_return`] and [`StockLedger::finish_return`].
#[async_trait]
pub trait StockLedger: Send + Sync {
    /// Reserves `quantity` units in one bucket (the buyer's home bucket first, then
    /// the others) and the same in the buyer's quota, atomically; the quota is checked
    /// first, so a refused request burns no stock.
    ///
    /// # Errors
    /// `Unavailable` when the ledger cannot be reached.
    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, GatewayError>;

    /// Ends a reservation.
    ///
    /// # Errors
    /// `Unavailable`; reconcile repairs what a lost settlement leaves behind.
    async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        bucket_no: u32,
        quantity: u32,
        settlement: Settlement<'_>,
    ) -> Result<(), GatewayError>;

    /// Announces a return of units (cancel, expiry, stock change), named by `token`,
    /// about to be written to the database. `Ok(false)` when the product is not loaded
    /// (nothing to do).
    ///
    /// # Errors
    /// `Rejected(Suspended)` while the product is suspended; `Unavailable`.
    async fn begin_return(&self, product_id: ProductId, token: &str) -> Result<bool, GatewayError>;

    /// Ends an announced return: applies `deltas` to the buckets (and gives `quota`
    /// units back to the buyer, when set) if the database write committed, or nothing
    /// if it did not.
    ///
    /// # Errors
    /// `Unavailable`; reconcile repairs what a lost return leaves behind.
    async fn finish_return(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&UserId, u32)>,
    ) -> Result<(), GatewayError>;

    /// Takes unsold units out of buckets, all or nothing, inside an announced return.
    /// `Ok(false)` when some bucket holds fewer than asked.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn take(
        &self,
        product_id: ProductId,
        deltas: &[BucketDelta],
    ) -> Result<bool, GatewayError>;

    /// Replaces the product's state with the database's: bucket availability (minus
    /// units still in flight) and every buyer's used quota. Call only when the product
    /// is not loaded or is suspended and idle.
    ///
    /// # Errors
    /// `Unavailable`.
    ///
    /// `in_flight` names reservations that outlived the ledger's own memory of them
    /// (queued placements after a restart or a data loss): they are held again, out of
    /// the database's availability, and settle as usual. `quotas` already counts them.
    /// A ledger that still remembers its reservations keeps its own.
    async fn load(
        &self,
        product_id: ProductId,
        buckets: &[StockBucket],
        quotas: &[(UserId, u32)],
        in_flight: &[InFlight],
    ) -> Result<(), GatewayError>;

    /// Whether the product is loaded (cheaper than [`StockLedger::view`]).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn is_loaded(&self, product_id: ProductId) -> Result<bool, GatewayError>;

    /// The product's state, or `None` when it is not loaded.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn view(&self, product_id: ProductId) -> Result<Option<LedgerView>, GatewayError>;

    /// Stops new reservations and returns for the product and waits (up to `wait`) for
    /// those in progress to finish. `Ok(false)` when they did not finish in time (the
    /// product stays suspended: call [`StockLedger::resume`]).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn suspend(
        &self,
        product_id: ProductId,
        wait: std::time::Duration,
    ) -> Result<bool, GatewayError>;

    /// Lets reservations and returns in again.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn resume(&self, product_id: ProductId) -> Result<(), GatewayError>;
}

/// A held lock: released by its owner only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLease {
    /// The lock's name.
    pub name: String,
    /// The owner's secret token.
    pub token: String,
}

/// Named locks with a time to live: in process, or across instances (Redis).
#[async_trait]
pub trait LockGateway: Send + Sync {
    /// Takes `name` for `ttl` unless someone holds it.
    ///
    /// # Errors
    /// `Unavailable` when the lock service cannot be reached.
    async fn try_acquire(
        &self,
        name: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<LockLease>, GatewayError>;

    /// Lets go of `lease` if it is still held by it (compare-and-delete).
    ///
    /// # Errors
    /// `Unavailable`; the lock then expires on its own.
    async fn release(&self, lease: &LockLease) -> Result<(), GatewayError>;
}

/// The second level of the read cache, shared by every instance (Redis): text values
/// with a time to live.
#[async_trait]
pub trait SharedCache: Send + Sync {
    /// The value under `key`, if any.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn get(&self, key: &str) -> Result<Option<String>, GatewayError>;

    /// Stores `value` under `key` for `ttl`.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: std::time::Duration,
    ) -> Result<(), GatewayError>;

    /// Forgets `keys`.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn delete(&self, keys: &[String]) -> Result<(), GatewayError>;
}

/// A notice every instance acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Drop what is cached about this event.
    Event(EventId),
    /// Drop what is cached about this product (and its event's product list).
    Product {
        /// The product.
        id: ProductId,
        /// Its event.
        event_id: EventId,
    },
    /// Units came back: the product sells again.
    SoldOutCleared(ProductId),
}

/// Broadcasts notices to every instance (Redis pub/sub).
#[async_trait]
pub trait NoticeBus: Send + Sync {
    /// Sends `notice` to every subscribed instance, this one included.
    ///
    /// # Errors
    /// `Unavailable`; caches then catch up when their entries expire.
    async fn publish(&self, notice: Notice) -> Result<(), GatewayError>;
}

/// One placement to turn into its order: the order as it will be written (its
/// `placement_id` set) and the per-user limit in force.
#[derive(Debug, Clone)]
pub struct Fulfil {
    /// The order.
    pub order: Order,
    /// The buyer's limit.
    pub limit: PerUserLimit,
}

/// What became of one placement in [`PlacementGateway::fulfil`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fulfilled {
    /// The order is written and the placement `succeeded` (now, by this call).
    Placed,
    /// A database guard said no (sold out, over the limit); nothing was written and
    /// the placement is still `queued`: fail it.
    Rejected(OrderError),
    /// The placement had already left `queued` (a duplicate delivery, or the sweeper
    /// failed it): nothing was written, and nothing is to be settled.
    AlreadyResolved,
}

/// Stores async placements (embedded mode and the default: durable rows).
#[async_trait]
pub trait PlacementGateway: Send + Sync {
    /// Stores a new `queued` placement.
    ///
    /// # Errors
    /// `Duplicate("idempotency_key")` when the buyer already used the key;
    /// `Unavailable`.
    async fn insert(&self, placement: &Placement) -> Result<(), GatewayError>;

    /// Forgets a placement whose task could not be published (it never was accepted).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn delete(&self, id: &PlacementId) -> Result<(), GatewayError>;

    /// The placement, if it exists.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn find(&self, id: &PlacementId) -> Result<Option<Placement>, GatewayError>;

    /// The buyer's placement made with this idempotency key, if any.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn find_by_idempotency_key(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Placement>, GatewayError>;

    /// Writes the orders of a batch of `queued` placements and marks them `succeeded`,
    /// in as few transactions as the guards allow (one for the whole batch when every
    /// guard passes): bucket decrements summed per bucket, quotas summed per buyer,
    /// orders and ledger rows inserted together. One answer per item, in order.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached: nothing of the failed
    /// transaction was written (earlier items may have been; a retry finds them
    /// `AlreadyResolved`).
    async fn fulfil(&self, batch: &[Fulfil]) -> Result<Vec<Fulfilled>, GatewayError>;

    /// Marks a `queued` placement `failed` with `code` and `message`; `false` when it
    /// was no longer queued (whoever resolved it settles it).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn fail(
        &self,
        id: &PlacementId,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, GatewayError>;

    /// Up to `limit` placements still `queued` that were accepted before `before`,
    /// oldest first.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn queued(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Placement>, GatewayError>;

    /// Every `queued` placement of a product.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn queued_for(&self, product_id: ProductId) -> Result<Vec<Placement>, GatewayError>;
}

/// Carries placement tasks from the request to the consumer (an in-process queue, or
/// a broker). Delivery is at least once: the consumer is idempotent.
#[async_trait]
pub trait PlacementQueue: Send + Sync {
    /// Hands the task over; once this returns `Ok`, the task will be delivered.
    ///
    /// # Errors
    /// `Unavailable` when the queue cannot take it (full, or the broker is down).
    async fn publish(&self, task: &Placement) -> Result<(), GatewayError>;

    /// This instance's share of the tasks: waits up to `wait` for the first, then takes
    /// what is there, up to `max`. Empty when none came.
    async fn next_batch(&self, max: usize, wait: std::time::Duration) -> Vec<Placement>;
}
