//! In-process implementations for the embedded (single-instance, no server) mode.

mod locks;
mod queue;
mod stock_ledger;
mod stock_state;
mod tally;

pub use locks::EmbeddedLocks;
pub use queue::EmbeddedTaskQueue;
pub(crate) use queue::take_batch;
pub use stock_ledger::EmbeddedStockLedger;
pub use tally::EmbeddedTally;
pub(crate) use tally::KEEP;
