//! Async placements: a reserved request waiting for its order to be written.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::Strategy;
use crate::allocation::Allocation;
use crate::error::ValidationErrors;
use crate::event::EventId;
use crate::order::{IdempotencyKey, NewOrder, Order, OrderError, OrderId, OrderRequest};
use crate::product::ProductId;
use crate::user::UserId;

/// A placement id (UUIDv7).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlacementId(String);

impl PlacementId {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Wraps a stored or requested id; `None` when it cannot be one of ours.
    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s).ok().map(|u| Self(u.to_string()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlacementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a placement is: `queued → succeeded(order) | failed(code)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementStatus {
    /// Reserved; the order is being written.
    Queued,
    /// The order exists.
    Succeeded(OrderId),
    /// No order; the units went back.
    Failed {
        /// An error code, as in the error envelope.
        code: String,
        /// Human-readable explanation.
        message: String,
    },
}

impl PlacementStatus {
    /// The name used on the wire and in storage.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Succeeded(_) => "succeeded",
            Self::Failed { .. } => "failed",
        }
    }
}

/// An async placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Id.
    pub id: PlacementId,
    /// The buyer.
    pub user_id: UserId,
    /// The event.
    pub event_id: EventId,
    /// The product.
    pub product_id: ProductId,
    /// The reserved buckets.
    pub allocation: Allocation,
    /// Units.
    pub quantity: u32,
    /// `flash_price` when reserved.
    pub unit_price: i64,
    /// The buyer's idempotency key, if any.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The request's fingerprint.
    pub request_fingerprint: String,
    /// Where it is.
    pub status: PlacementStatus,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What a new placement holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlacement {
    /// Its id, chosen before the reservation so that it can name it.
    pub id: PlacementId,
    /// The buyer.
    pub user_id: UserId,
    /// The event.
    pub event_id: EventId,
    /// What was asked for.
    pub request: OrderRequest,
    /// The reserved buckets.
    pub allocation: Allocation,
    /// The product's `flash_price` now.
    pub unit_price: i64,
    /// The buyer's idempotency key.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Acceptance time.
    pub now: DateTime<Utc>,
}

impl Placement {
    /// A `queued` placement; its price is checked now so that the order cannot fail
    /// on it later.
    pub fn queue(new: NewPlacement) -> Result<Self, OrderError> {
        new.unit_price
            .checked_mul(i64::from(new.request.quantity))
            .ok_or_else(|| ValidationErrors::single("quantity", "is too large"))?;
        Ok(Self {
            id: new.id,
            user_id: new.user_id,
            event_id: new.event_id,
            product_id: new.request.product_id,
            allocation: new.allocation,
            quantity: new.request.quantity,
            unit_price: new.unit_price,
            idempotency_key: new.idempotency_key,
            request_fingerprint: new.request.fingerprint(),
            status: PlacementStatus::Queued,
            created_at: new.now,
            updated_at: new.now,
        })
    }

    /// The strategy whose orders are placements first. Placements do not store a
    /// strategy: a second strategy that queues orders must add one (the test
    /// `placements_belong_to_the_one_queueing_strategy` fails until it does).
    pub const STRATEGY: Strategy = Strategy::Async;

    /// The order this placement becomes, written at `now`. Its id derives from the
    /// placement's, so that every delivery of the task means the same order.
    pub fn to_order(
        &self,
        now: DateTime<Utc>,
        payment_timeout: chrono::Duration,
    ) -> Result<Order, OrderError> {
        Order::place(NewOrder {
            id: OrderId::parse(self.id.as_str())
                .ok_or_else(|| ValidationErrors::single("id", "is not a placement id"))?,
            user_id: self.user_id.clone(),
            event_id: self.event_id,
            request: self.request(),
            allocation: self.allocation.clone(),
            unit_price: self.unit_price,
            strategy: Self::STRATEGY,
            idempotency_key: self.idempotency_key.clone(),
            placement_id: Some(self.id.as_str().to_owned()),
            now,
            payment_timeout,
        })
    }

    /// The main reserved bucket.
    pub fn bucket_no(&self) -> u32 {
        self.allocation.bucket_no()
    }

    /// The request it answers.
    pub fn request(&self) -> OrderRequest {
        OrderRequest {
            product_id: self.product_id,
            quantity: self.quantity,
        }
    }

    /// Whether it has left `queued`.
    pub fn is_resolved(&self) -> bool {
        self.status != PlacementStatus::Queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(quantity: u32, unit_price: i64) -> Result<Placement, OrderError> {
        Placement::queue(NewPlacement {
            id: PlacementId::generate(),
            user_id: UserId::parse("u1").expect("user"),
            event_id: EventId(1),
            request: OrderRequest {
                product_id: ProductId(2),
                quantity,
            },
            allocation: Allocation::single(0, quantity),
            unit_price,
            idempotency_key: Some(IdempotencyKey::parse("k1").expect("key")),
            now: Utc::now(),
        })
    }

    #[test]
    fn a_placement_becomes_the_same_order_on_every_delivery() {
        let p = queued(2, 150).expect("placement");
        assert!(!p.is_resolved());
        let now = Utc::now();
        let a = p
            .to_order(now, chrono::Duration::minutes(15))
            .expect("order");
        let b = p
            .to_order(now, chrono::Duration::minutes(15))
            .expect("order");
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.as_str(), p.id.as_str());
        assert_eq!(
            (a.total_price, a.quantity, a.strategy),
            (300, 2, Strategy::Async)
        );
        assert_eq!(a.placement_id.as_deref(), Some(p.id.as_str()));
        assert_eq!(a.request_fingerprint, p.request_fingerprint);
        assert_eq!(a.expires_at, now + chrono::Duration::minutes(15));
    }

    #[test]
    fn placements_belong_to_the_one_queueing_strategy() {
        let queueing: Vec<Strategy> = Strategy::ALL
            .into_iter()
            .filter(|s| s.queues_orders())
            .collect();
        assert_eq!(queueing, [Placement::STRATEGY]);
    }

    #[test]
    fn an_overflowing_total_is_refused_when_queued() {
        assert!(queued(u32::MAX, i64::MAX / 2).is_err());
    }
}
