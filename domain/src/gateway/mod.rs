//! Ports: what the application needs from the outside world, one port family per
//! file. Infrastructure implements them, named by technology (`SeaOrmEventGateway`,
//! `RedisStockLedger`, …).

use chrono::{DateTime, Utc};

use crate::error::{Cause, DomainError};

mod catalogue;
mod orders;
mod placements;
mod shared;
mod stock;

pub use catalogue::{EventGateway, ProductGateway, Relay, StockState, StockStateSink};
pub use orders::{OrderFilter, OrderGateway, Release};
pub use placements::{Fulfil, Fulfilled, PlacementGateway, PlacementQueue};
pub use shared::{
    Attempt, LockGateway, LockLease, Notice, NoticeBus, SharedCache, Tally, TallyGateway,
};
pub use stock::{
    Hold, HoldKind, InFlight, LedgerView, Reservation, ReserveRequest, ReturnInProgress,
    Settlement, StockLedger, Suspension, age_ms,
};
#[cfg(feature = "mock")]
pub use {
    catalogue::{MockEventGateway, MockProductGateway, MockStockStateSink},
    orders::MockOrderGateway,
    placements::{MockPlacementGateway, MockPlacementQueue},
    shared::{MockLockGateway, MockNoticeBus, MockSharedCache},
    stock::MockStockLedger,
};

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
    /// A unique key is taken.
    #[error("duplicate {0}")]
    Duplicate(UniqueKey),
    /// The backend cannot answer now (connection lost, timeout, pool exhausted).
    /// Nothing was changed; the call is safe to retry.
    #[error("unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else: a bug or corrupt data.
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl GatewayError {
    /// A rejection from a domain error.
    pub fn rejected(error: impl Into<DomainError>) -> Self {
        Self::Rejected(error.into())
    }
}

/// A unique key the storage enforces and the use cases act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniqueKey {
    /// A buyer's `Idempotency-Key` (orders and placements share it).
    IdempotencyKey,
    /// A payment's transaction id.
    TransactionId,
    /// The placement an order was written for.
    PlacementId,
}

impl UniqueKey {
    /// Every key.
    pub const ALL: [Self; 3] = [Self::IdempotencyKey, Self::TransactionId, Self::PlacementId];

    /// Its column name (index names and constraint messages contain it).
    pub fn column(self) -> &'static str {
        match self {
            Self::IdempotencyKey => "idempotency_key",
            Self::TransactionId => "transaction_id",
            Self::PlacementId => "placement_id",
        }
    }
}

impl std::fmt::Display for UniqueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.column())
    }
}

/// The current time, so that tests can move it.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}
