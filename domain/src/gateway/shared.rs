//! Ports shared by every instance: named locks, the second cache level and notices.

use async_trait::async_trait;

use super::GatewayError;
use crate::event::EventId;
use crate::product::ProductId;

/// A held lock: released by its owner only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockLease {
    /// The lock's name.
    pub name: String,
    /// The owner's secret token.
    pub token: String,
}

/// Named locks with a time to live: in process, or across instances (Redis).
#[cfg_attr(feature = "mock", mockall::automock)]
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

    /// Extends `lease` to `ttl` from now if it is still held by it; `false` when it
    /// was lost (expired and maybe taken by someone else).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn renew(
        &self,
        lease: &LockLease,
        ttl: std::time::Duration,
    ) -> Result<bool, GatewayError>;

    /// Lets go of `lease` if it is still held by it (compare-and-delete).
    ///
    /// # Errors
    /// `Unavailable`; the lock then expires on its own.
    async fn release(&self, lease: &LockLease) -> Result<(), GatewayError>;
}

/// The second level of the read cache, shared by every instance (Redis): text values
/// with a time to live.
#[cfg_attr(feature = "mock", mockall::automock)]
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
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait NoticeBus: Send + Sync {
    /// Sends `notice` to every subscribed instance, this one included.
    ///
    /// # Errors
    /// `Unavailable`; caches then catch up when their entries expire.
    async fn publish(&self, notice: Notice) -> Result<(), GatewayError>;
}

/// What became of an order attempt, as the console charts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attempt {
    /// An order made (201) or a placement accepted (202).
    Sold,
    /// `SOLD_OUT`.
    SoldOut,
    /// `LIMIT_EXCEEDED`.
    LimitExceeded,
    /// `NOT_ON_SALE`.
    NotOnSale,
    /// `UNAVAILABLE`.
    Unavailable,
    /// `RATE_LIMITED` (the per-buyer limit).
    RateLimited,
}

impl Attempt {
    /// Every outcome, in the order of [`Tally`]'s counts.
    pub const ALL: [Self; 6] = [
        Self::Sold,
        Self::SoldOut,
        Self::LimitExceeded,
        Self::NotOnSale,
        Self::Unavailable,
        Self::RateLimited,
    ];

    /// Its place in [`Tally`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Attempts by outcome, indexed by [`Attempt::index`].
pub type Tally = [u64; Attempt::ALL.len()];

/// Order attempts per product and second, added up over every instance (Redis), or
/// in process: what the console charts.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TallyGateway: Send + Sync {
    /// Adds each product's counts to `second` (Unix seconds).
    ///
    /// # Errors
    /// `Unavailable`; the counts are then lost (they only feed a chart).
    async fn add(&self, second: i64, counts: &[(ProductId, Tally)]) -> Result<(), GatewayError>;

    /// The product's counts of each second from `since` on that has any, oldest first.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn since(
        &self,
        product: ProductId,
        since: i64,
    ) -> Result<Vec<(i64, Tally)>, GatewayError>;
}
