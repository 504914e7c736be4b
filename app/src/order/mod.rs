//! The buyer's orders: placing them (one strategy per event), paying, cancelling,
//! expiring, and reading them back.

mod idempotency;
mod lifecycle;
mod place;
mod placement;
mod query;
pub mod strategy;

pub use lifecycle::{OrderCancelCmdExe, OrderExpireJobExe, OrderPayCmdExe};
pub use place::PlaceOrderCmdExe;
pub use placement::{
    ConsumeReport, PlacementConsumeCmdExe, PlacementGetQryExe, PlacementSweepJobExe, placement_dto,
};
pub use query::{AdminOrderListQryExe, OrderGetQryExe, OrderListQryExe};
pub use strategy::{
    AsyncOrdering, OrderingStrategy, PlaceContext, PlaceOrderOutcome, Strategies, SyncOrdering,
};

use std::sync::Arc;
use std::time::Duration;

use flash_sale_domain::gateway::{GatewayError, OrderGateway};
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

/// How long a request keeps asking whether a write whose answer was lost landed:
/// about 10 s in all, longer than a brief outage, so that its buyer is not told 503
/// while the write may have landed.
const CONFIRM_RETRIES: [Duration; 8] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
    Duration::from_millis(3200),
    Duration::from_millis(3200),
];

/// Whether a write whose answer was lost is in the database, asking `exists` a few
/// times; `None` when the database cannot say.
pub(crate) async fn confirm<F, Fut>(mut exists: F) -> Option<bool>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, GatewayError>>,
{
    for pause in CONFIRM_RETRIES {
        match exists().await {
            Ok(found) => return Some(found),
            Err(_) => tokio::time::sleep(pause).await,
        }
    }
    None
}
