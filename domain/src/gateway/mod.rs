//! Ports: what the application needs from the outside world, one port family per
//! file. Infrastructure implements them, named by technology (`SeaOrmEventGateway`,
//! `RedisStockLedger`, …).

use chrono::{DateTime, Utc};

use crate::error::DomainError;

mod catalogue;
mod orders;
mod placements;
mod shared;
mod stock;

pub use catalogue::{EventGateway, ProductGateway, Relay, StockState, StockStateSink};
pub use orders::{OrderFilter, OrderGateway, Release};
pub use placements::{Fulfil, Fulfilled, PlacementGateway, PlacementQueue};
pub use shared::{LockGateway, LockLease, Notice, NoticeBus, SharedCache};
pub use stock::{
    Hold, HoldKind, InFlight, LedgerView, Reservation, ReserveRequest, ReturnInProgress,
    Settlement, StockLedger, Suspension, age_ms,
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
