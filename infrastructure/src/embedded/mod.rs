//! In-process implementations for the embedded (single-instance, no server) mode.

mod locks;
mod stock_ledger;

pub use locks::EmbeddedLocks;
pub use stock_ledger::EmbeddedStockLedger;
