//! The buyer's orders: placing them (one strategy per event), paying, cancelling,
//! expiring, and reading them back.

mod idempotency;
mod lifecycle;
mod place;
mod placement;
mod query;

pub use lifecycle::{OrderCancelCmdExe, OrderExpireJobExe, OrderPayCmdExe};
pub use place::{
    OrderingStrategy, PlaceContext, PlaceOrderCmdExe, PlaceOrderOutcome, SyncOrdering,
};
pub use placement::{
    AsyncOrdering, ConsumeReport, PlacementConsumeCmdExe, PlacementGetQryExe, PlacementSweepJobExe,
    placement_dto,
};
pub use query::{AdminOrderListQryExe, OrderGetQryExe, OrderListQryExe};

use std::sync::Arc;

use flash_sale_domain::gateway::OrderGateway;
use flash_sale_domain::order::{Order, OrderId};

use crate::Caller;
use crate::error::AppError;

/// The caller's own order, or `NotFound` (someone else's orders do not exist for
/// them).
pub(crate) async fn own_order(
    orders: &Arc<dyn OrderGateway>,
    caller: &Caller,
    id: &str,
) -> Result<Order, AppError> {
    let id = OrderId::parse(id).ok_or(AppError::NotFound("order"))?;
    orders
        .find(&id)
        .await?
        .filter(|order| order.user_id == caller.user_id)
        .ok_or(AppError::NotFound("order"))
}
