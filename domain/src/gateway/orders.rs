//! The order port: the order transaction, payment, returns and the admin's views.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::GatewayError;
use crate::order::{IdempotencyKey, Order, OrderId, OrderStatus};
use crate::page::{Page, PageRequest};
use crate::product::{PerUserLimit, ProductId};
use crate::user::UserId;

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
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait OrderGateway: Send + Sync {
    /// The order transaction: decrement the order's bucket only if it holds enough
    /// (`available >= quantity`), add the quantity to the buyer's purchase quota only
    /// if it stays within `limit`, insert the order and an `order_placed` ledger row.
    ///
    /// # Errors
    /// `Rejected(SoldOut)` or `Rejected(LimitExceeded)` when a guard says no;
    /// `Duplicate(IdempotencyKey)` or `Duplicate(PlacementId)` when such an
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
    /// `Duplicate(TransactionId)` when another order has that transaction id;
    /// `NotFound` when the order is no longer pending (re-read it); `Unavailable`.
    async fn pay(&self, order: &Order) -> Result<(), GatewayError>;

    /// Gives a `pending_payment` order's units back: status → cancelled/expired (an
    /// expiry only once `expires_at` has passed), each bucket of its allocation and the
    /// buyer's quota back by its units, one ledger row per bucket. The order is read
    /// with its row locked, so the buckets are those it names when the return commits
    /// (a re-arrangement may have moved it); a bucket that does not take its units is
    /// an error, never ignored. Exactly once: `None` when the order was no longer
    /// pending (someone else released it, or it was paid), else the order as released.
    /// `token` names this return on the order's row: a retry with the same token
    /// that finds the order released by it (the first answer was lost) answers the
    /// order as released.
    ///
    /// # Errors
    /// `NotFound` when there is no such order; `Unavailable`; nothing is written on
    /// any error.
    async fn release(
        &self,
        id: &OrderId,
        release: Release,
        now: DateTime<Utc>,
        token: &str,
    ) -> Result<Option<Order>, GatewayError>;

    /// Up to `limit` `pending_payment` orders whose `expires_at` is at or before `now`,
    /// by `(expires_at, id)`, starting after `after` (the last of the previous page).
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn expired(
        &self,
        now: DateTime<Utc>,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: u64,
    ) -> Result<Vec<Order>, GatewayError>;

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
