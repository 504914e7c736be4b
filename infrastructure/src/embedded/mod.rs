//! In-process implementations for the embedded (single-instance, no server) mode.

mod stock_ledger;

pub use stock_ledger::EmbeddedStockLedger;
