//! Placements as buyers see them: `GET /placements/{id}`, and the replay of a keyed
//! request that made one.

use std::sync::Arc;
use std::time::Duration;

use flash_sale_client::{PlacementDto, PlacementErrorDto, PlacementStatusDto};
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::PlacementGateway;
use flash_sale_domain::order::{IdempotencyKey, OrderError, OrderRequest};
use flash_sale_domain::placement::{Placement, PlacementId, PlacementStatus};

use crate::Caller;
use crate::error::AppError;
use crate::order::strategy::PlaceOrderOutcome;

/// The wire form of a placement.
pub fn placement_dto(p: &Placement) -> PlacementDto {
    let (status, order_id, error) = match &p.status {
        PlacementStatus::Queued => (PlacementStatusDto::Queued, None, None),
        PlacementStatus::Succeeded(order) => (
            PlacementStatusDto::Succeeded,
            Some(order.as_str().to_owned()),
            None,
        ),
        PlacementStatus::Failed { code, message } => (
            PlacementStatusDto::Failed,
            None,
            Some(PlacementErrorDto {
                code: code.clone(),
                message: message.clone(),
            }),
        ),
    };
    PlacementDto {
        id: p.id.as_str().to_owned(),
        product_id: p.product_id.0,
        quantity: p.quantity,
        status,
        order_id,
        error,
    }
}

/// The same key again: the first placement as it is now, or `IDEMPOTENCY_KEY_REUSED`.
pub(crate) fn replay_placement(
    placement: &Placement,
    request: &OrderRequest,
) -> Result<PlaceOrderOutcome, AppError> {
    if placement.request_fingerprint == request.fingerprint() {
        Ok(PlaceOrderOutcome::Accepted(placement_dto(placement)))
    } else {
        Err(AppError::domain(OrderError::IdempotencyKeyReused))
    }
}

/// `GET /placements/{id}`: the caller's own placement. A resolved placement never
/// changes again, so it is cached in process; a queued one is read by primary key.
pub struct PlacementGetQryExe {
    placements: Arc<dyn PlacementGateway>,
    resolved: moka::future::Cache<PlacementId, Arc<Placement>>,
}

impl PlacementGetQryExe {
    /// Reads from `placements`.
    pub fn new(placements: Arc<dyn PlacementGateway>) -> Self {
        Self {
            placements,
            resolved: moka::future::Cache::builder()
                .name("placements.resolved")
                .max_capacity(100_000)
                .time_to_live(Duration::from_mins(5))
                .build(),
        }
    }

    /// The placement, if it is the caller's.
    pub async fn execute(&self, caller: &Caller, id: &str) -> Result<PlacementDto, AppError> {
        let id = PlacementId::parse(id).ok_or(AppError::NotFound("placement"))?;
        let placement = match self.resolved.get(&id).await {
            Some(cached) => Some(cached),
            None => {
                let found = self.placements.find(&id).await?.map(Arc::new);
                if let Some(p) = found.as_ref().filter(|p| p.is_resolved()) {
                    self.resolved.insert(id, p.clone()).await;
                }
                found
            }
        };
        placement
            .filter(|p| p.user_id == caller.user_id)
            .map(|p| placement_dto(&p))
            .ok_or(AppError::NotFound("placement"))
    }
}

/// The replay of a keyed request that made a placement: `None` when there is none.
pub(crate) async fn placement_replay(
    placements: &Arc<dyn PlacementGateway>,
    user: &UserId,
    key: &IdempotencyKey,
    request: &OrderRequest,
) -> Result<Option<Result<PlaceOrderOutcome, AppError>>, AppError> {
    Ok(placements
        .find_by_idempotency_key(user, key)
        .await?
        .map(|p| replay_placement(&p, request)))
}
