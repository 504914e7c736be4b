//! Ports: what the application needs from the outside world. Infrastructure
//! implements them, named by technology (`SeaOrmEventGateway`, …).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::event::{Event, EventId, EventStatus, NewEvent};
use crate::ledger::{LedgerEntry, LedgerReason};
use crate::page::{Page, PageRequest};
use crate::product::{NewProduct, Product, ProductId};
use crate::stock::{BucketDelta, StockBucket};

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
