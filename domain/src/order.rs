//! Orders: units held for a buyer until paid, cancelled or expired.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::allocation::Allocation;
use crate::error::{ErrorKind, ValidationErrors};
use crate::event::EventId;
use crate::product::ProductId;
use crate::strategy::Strategy;
use crate::user::UserId;

/// An order id: a UUIDv7, unique across instances without coordination and roughly
/// ordered by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(String);

impl OrderId {
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

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client-chosen key that makes a request idempotent: 1–64 of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks the key.
    pub fn parse(value: &str) -> Result<Self, ValidationErrors> {
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(ValidationErrors::single(
                "Idempotency-Key",
                "must be 1 to 64 of A-Z, a-z, 0-9, '-' and '_'",
            ))
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment provider's transaction id: 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

impl TransactionId {
    /// Checks the id.
    pub fn parse(value: &str) -> Result<Self, ValidationErrors> {
        if (1..=64).contains(&value.chars().count()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(ValidationErrors::single(
                "transaction_id",
                "must be 1 to 64 characters",
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lifecycle status: `pending_payment → paid | cancelled | expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Units held, waiting for payment.
    PendingPayment,
    /// Paid.
    Paid,
    /// Cancelled by the buyer; units returned.
    Cancelled,
    /// Not paid in time; units returned.
    Expired,
}

impl OrderStatus {
    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::PendingPayment,
            Self::Paid,
            Self::Cancelled,
            Self::Expired,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Whether the order still holds its units.
    pub fn holds_units(self) -> bool {
        matches!(self, Self::PendingPayment | Self::Paid)
    }
}

/// A rule about orders was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Input that breaks a rule.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// Not enough stock left.
    #[error("not enough stock left")]
    SoldOut,
    /// The buyer's per-user limit would be passed.
    #[error("the per-user limit of {limit} would be passed")]
    LimitExceeded {
        /// The limit in force.
        limit: u32,
    },
    /// The product is not on sale now.
    #[error("not on sale: {0}")]
    NotOnSale(&'static str),
    /// The transition needs a `pending_payment` order.
    #[error("the order is {}, not pending_payment", status.as_str())]
    NotPending {
        /// Current status.
        status: OrderStatus,
    },
    /// The payment came after the order expired.
    #[error("the order expired before it was paid")]
    PaymentTooLate,
    /// The order's expiry time has not come yet.
    #[error("the order has not expired yet")]
    NotYetExpired,
    /// The transaction id belongs to another order.
    #[error("the transaction id is already used by another order")]
    DuplicateTransaction,
    /// The idempotency key was used for another request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    /// Placements are accepted faster than orders are written: the queue is behind by
    /// more than its bound, so nothing was reserved.
    #[error(
        "the order queue is {} ms behind; nothing was reserved; try again shortly",
        lag.as_millis()
    )]
    QueueBehind {
        /// How long the waiting placements have waited.
        lag: std::time::Duration,
    },
}

impl OrderError {
    /// The failure's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation(_) => ErrorKind::Validation,
            Self::SoldOut => ErrorKind::SoldOut,
            Self::LimitExceeded { .. } => ErrorKind::LimitExceeded,
            Self::NotOnSale(_) => ErrorKind::NotOnSale,
            Self::NotPending { .. } | Self::PaymentTooLate | Self::NotYetExpired => {
                ErrorKind::InvalidState
            }
            Self::DuplicateTransaction => ErrorKind::DuplicateTransaction,
            Self::IdempotencyKeyReused => ErrorKind::IdempotencyKeyReused,
            Self::QueueBehind { .. } => ErrorKind::Unavailable,
        }
    }
}

/// What a buyer asked for; two requests with the same key must ask for the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderRequest {
    /// The product.
    pub product_id: ProductId,
    /// Units.
    pub quantity: u32,
}

impl OrderRequest {
    /// A compact, stable fingerprint of the request, stored next to the key.
    pub fn fingerprint(&self) -> String {
        format!("p{}:q{}", self.product_id.0, self.quantity)
    }
}

/// What a payment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    /// The order is now paid.
    Paid,
    /// The order was already paid with this transaction id: nothing changed.
    AlreadyPaid,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Id.
    pub id: OrderId,
    /// The buyer.
    pub user_id: UserId,
    /// The event.
    pub event_id: EventId,
    /// The product.
    pub product_id: ProductId,
    /// The buckets the units came from (and return to).
    pub allocation: Allocation,
    /// Units.
    pub quantity: u32,
    /// `flash_price` when placed.
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub total_price: i64,
    /// The strategy that placed it.
    pub strategy: Strategy,
    /// Lifecycle status.
    pub status: OrderStatus,
    /// The buyer's idempotency key, if any.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The request's fingerprint (with the key).
    pub request_fingerprint: String,
    /// The async placement that made it, if any.
    pub placement_id: Option<String>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When, unpaid, it expires.
    pub expires_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// The payment's transaction id.
    pub transaction_id: Option<TransactionId>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Everything needed to place an order; the price is the server's, never the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// Its id, chosen before the reservation so that it can name it.
    pub id: OrderId,
    /// The buyer.
    pub user_id: UserId,
    /// The event.
    pub event_id: EventId,
    /// What was asked for.
    pub request: OrderRequest,
    /// The reserved buckets (their units add up to the request's quantity).
    pub allocation: Allocation,
    /// The product's `flash_price` now.
    pub unit_price: i64,
    /// The strategy placing it.
    pub strategy: Strategy,
    /// The buyer's idempotency key.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The async placement, if any.
    pub placement_id: Option<String>,
    /// Placement time.
    pub now: DateTime<Utc>,
    /// How long it may stay unpaid.
    pub payment_timeout: chrono::Duration,
}

impl Order {
    /// A new `pending_payment` order, its total computed here.
    pub fn place(new: NewOrder) -> Result<Self, OrderError> {
        if new.allocation.quantity() != new.request.quantity {
            return Err(
                ValidationErrors::single("quantity", "does not match the reserved units").into(),
            );
        }
        let total_price = new
            .unit_price
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
            total_price,
            strategy: new.strategy,
            status: OrderStatus::PendingPayment,
            idempotency_key: new.idempotency_key,
            request_fingerprint: new.request.fingerprint(),
            placement_id: new.placement_id,
            created_at: new.now,
            expires_at: new.now + new.payment_timeout,
            paid_at: None,
            transaction_id: None,
            updated_at: new.now,
        })
    }

    /// The main bucket (the first the units came from).
    pub fn bucket_no(&self) -> u32 {
        self.allocation.bucket_no()
    }

    /// Pays the order. The amount must equal the total; the same transaction id again
    /// is an idempotent success; a payment at or after `expires_at` is refused.
    pub fn pay(
        &mut self,
        transaction_id: &TransactionId,
        amount: i64,
        now: DateTime<Utc>,
    ) -> Result<Payment, OrderError> {
        if self.status == OrderStatus::Paid && self.transaction_id.as_ref() == Some(transaction_id)
        {
            return Ok(Payment::AlreadyPaid);
        }
        match self.status {
            OrderStatus::PendingPayment if now >= self.expires_at => {
                Err(OrderError::PaymentTooLate)
            }
            OrderStatus::PendingPayment => {
                if amount != self.total_price {
                    return Err(ValidationErrors::single(
                        "amount",
                        format!("must equal the order's total_price {}", self.total_price),
                    )
                    .into());
                }
                self.status = OrderStatus::Paid;
                self.paid_at = Some(now);
                self.transaction_id = Some(transaction_id.clone());
                self.updated_at = now;
                Ok(Payment::Paid)
            }
            OrderStatus::Expired => Err(OrderError::PaymentTooLate),
            status => Err(OrderError::NotPending { status }),
        }
    }

    /// Cancels an unpaid order; its units go back.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<(), OrderError> {
        self.release(OrderStatus::Cancelled, now)
    }

    /// Expires an unpaid order whose time has come; its units go back.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Result<(), OrderError> {
        if self.status == OrderStatus::PendingPayment && now < self.expires_at {
            return Err(OrderError::NotYetExpired);
        }
        self.release(OrderStatus::Expired, now)
    }

    fn release(&mut self, to: OrderStatus, now: DateTime<Utc>) -> Result<(), OrderError> {
        if self.status != OrderStatus::PendingPayment {
            return Err(OrderError::NotPending {
                status: self.status,
            });
        }
        self.status = to;
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;
