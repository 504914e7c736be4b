//! The async strategy's back half (DESIGN §4): the consumer that writes the orders
//! of queued placements in batches, the sweeper that makes sure none stays `queued`,
//! and the buyer's view of a placement.

mod consumer;
mod query;
mod sweeper;

pub use consumer::{ConsumeReport, PlacementConsumeCmdExe};
pub use query::{PlacementGetQryExe, placement_dto};
pub(crate) use query::{placement_replay, replay_placement};
pub use sweeper::PlacementSweepJobExe;
