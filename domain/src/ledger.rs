//! The append-only inventory ledger: every unit that moves writes a row.

use chrono::{DateTime, Utc};

use crate::product::ProductId;

/// Why units moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerReason {
    /// Units put on sale (one row per bucket at creation, and stock added later).
    StockAdded,
    /// Unsold units taken off sale.
    StockRemoved,
    /// An order took units.
    OrderPlaced,
    /// A cancelled order gave them back.
    OrderCancelled,
    /// An expired order gave them back.
    OrderExpired,
    /// Buckets were re-arranged.
    Rebalanced,
}

impl LedgerReason {
    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StockAdded => "stock_added",
            Self::StockRemoved => "stock_removed",
            Self::OrderPlaced => "order_placed",
            Self::OrderCancelled => "order_cancelled",
            Self::OrderExpired => "order_expired",
            Self::Rebalanced => "rebalanced",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::StockAdded,
            Self::StockRemoved,
            Self::OrderPlaced,
            Self::OrderCancelled,
            Self::OrderExpired,
            Self::Rebalanced,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == s)
    }
}

/// One stored ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Row id (ascending).
    pub id: i64,
    /// The product.
    pub product_id: ProductId,
    /// The bucket.
    pub bucket_no: u32,
    /// Units in (positive) or out (negative).
    pub delta: i64,
    /// Why.
    pub reason: LedgerReason,
    /// What caused it: an order id or an admin action.
    pub reference: String,
    /// When.
    pub created_at: DateTime<Utc>,
}
