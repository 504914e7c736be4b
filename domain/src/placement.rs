//! Async placements: a reserved request waiting for its order to be written.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::event::EventId;
use crate::order::{IdempotencyKey, OrderId};
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
    /// The reserved bucket.
    pub bucket_no: u32,
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

impl Placement {
    /// Whether it has left `queued`.
    pub fn is_resolved(&self) -> bool {
        self.status != PlacementStatus::Queued
    }
}
