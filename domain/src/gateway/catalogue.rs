//! Ports of the catalogue: events, and products with their stock buckets and ledger.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{GatewayError, InFlight};
use crate::event::{Event, EventId, EventStatus, NewEvent};
use crate::ledger::{LedgerEntry, LedgerReason};
use crate::page::{Page, PageRequest};
use crate::product::{NewProduct, Product, ProductId};
use crate::stock::{BucketDelta, StockBucket};
use crate::user::UserId;

/// Stores events.
#[cfg_attr(feature = "mock", mockall::automock)]
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

/// What a re-lay changes in the database before the stock ledger is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// Nothing: the ledger is rewritten from the database as it is (loading,
    /// reconcile).
    Reload,
    /// The unsold units are split again over `count` buckets.
    Rebucket {
        /// The new bucket count (1–1024).
        count: u32,
    },
}

/// A product's stock as the database holds it, read for a re-lay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockState {
    /// The product (with its bucket count).
    pub product: Product,
    /// Its buckets, by number.
    pub buckets: Vec<StockBucket>,
    /// Every buyer's used quota, including the units of their queued placements.
    pub quotas: Vec<(UserId, u32)>,
    /// Queued placements: reservations on their way to the database.
    pub in_flight: Vec<InFlight>,
}

/// Receives the state a re-lay read (and rewrites the stock ledger from it).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait StockStateSink: Send + Sync {
    /// Takes `state` over; an error rolls the re-lay back.
    ///
    /// # Errors
    /// Whatever stopped it; the re-lay's transaction is rolled back.
    async fn apply(&self, state: &StockState) -> Result<(), GatewayError>;
}

/// Stores products, their stock buckets and the inventory ledger.
#[cfg_attr(feature = "mock", mockall::automock)]
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

    /// A re-lay, in one transaction: applies `relay` to the database, reads the
    /// product's stock with its bucket rows and queued placements locked, hands that
    /// state to `sink` (which rewrites the stock ledger) and commits only when the sink
    /// succeeded. Between the read and the commit no stock moves in the database, so
    /// the ledger is rewritten from a state that is still true when it is done.
    ///
    /// [`Relay::Rebucket`] re-lays the unsold units over `count` buckets: Σ
    /// `available` is split evenly over buckets `0..count`; each keeps its sold units
    /// (`total - available`). A bucket at or past `count` is folded into bucket
    /// `bucket_no % count`: its live orders' and queued placements' units move there,
    /// so a later return gives them to a bucket that sells, and its row goes. One
    /// `rebalanced` ledger row per bucket whose availability changed; `bucket_count`
    /// becomes `count`. Sold units are never redistributed.
    ///
    /// # Errors
    /// `NotFound`; `Unavailable`; the sink's error. Nothing changes on any error.
    #[allow(
        unused_parens,
        reason = "mockall needs the sink's object lifetime spelled out"
    )]
    async fn relay<'s>(
        &self,
        id: ProductId,
        relay: Relay,
        now: DateTime<Utc>,
        sink: &'s (dyn StockStateSink + 's),
    ) -> Result<Product, GatewayError>;

    /// The product's buckets and which of `tokens` (order or placement ids) already
    /// have their order written, read from one consistent snapshot.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn stock_snapshot(
        &self,
        id: ProductId,
        tokens: &[String],
    ) -> Result<(Vec<StockBucket>, HashSet<String>), GatewayError>;

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
