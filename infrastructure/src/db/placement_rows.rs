//! Placement rows and the domain's placements, both ways, and the insert of rows
//! recorded elsewhere first (Redis) that skips those already written.

use flash_sale_domain::UserId;
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::GatewayError;
use flash_sale_domain::order::{IdempotencyKey, OrderId};
use flash_sale_domain::placement::{Placement, PlacementId, PlacementStatus};
use flash_sale_domain::product::ProductId;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set, TryInsertResult};

use super::entity::placement;
use super::event_gateway::corrupt;
use super::order_gateway::stored_allocation;
use super::stock_rows::i32_of;

const QUEUED: &str = "queued";

/// Inserts the rows of `placements`, skipping any whose id is taken; how many it
/// wrote.
pub(super) async fn insert_unless_present(
    conn: &impl ConnectionTrait,
    placements: &[Placement],
) -> Result<u64, DbErr> {
    let written = placement::Entity::insert_many(placements.iter().map(placement_row))
        .on_conflict_do_nothing()
        .exec_without_returning(conn)
        .await?;
    Ok(match written {
        TryInsertResult::Inserted(rows) => rows,
        TryInsertResult::Conflicted | TryInsertResult::Empty => 0,
    })
}

/// A failure's message as the row keeps it (its column holds 200 characters).
pub(super) fn stored_message(message: &str) -> String {
    message.chars().take(200).collect()
}

pub(super) fn to_domain(row: placement::Model) -> Result<Placement, GatewayError> {
    let status = match row.status.as_str() {
        QUEUED => PlacementStatus::Queued,
        "succeeded" => PlacementStatus::Succeeded(
            row.order_id
                .as_deref()
                .and_then(OrderId::parse)
                .ok_or_else(|| corrupt("placement order id", "missing"))?,
        ),
        "failed" => PlacementStatus::Failed {
            code: row.error_code.unwrap_or_default(),
            message: row.error_message.unwrap_or_default(),
        },
        other => return Err(corrupt("placement status", other)),
    };
    Ok(Placement {
        id: PlacementId::parse(&row.id).ok_or_else(|| corrupt("placement id", &row.id))?,
        user_id: UserId::parse(&row.user_id).map_err(|_| corrupt("user id", &row.user_id))?,
        event_id: EventId(row.event_id),
        product_id: ProductId(row.product_id),
        allocation: stored_allocation(row.bucket_no, row.quantity, row.bucket_split.as_deref())?,
        quantity: u32::try_from(row.quantity).map_err(|_| corrupt("quantity", "negative"))?,
        unit_price: row.unit_price,
        idempotency_key: row
            .idempotency_key
            .as_deref()
            .map(|k| IdempotencyKey::parse(k).map_err(|_| corrupt("idempotency key", k)))
            .transpose()?,
        request_fingerprint: row.request_fingerprint,
        status,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(super) fn placement_row(p: &Placement) -> placement::ActiveModel {
    let (order_id, error_code, error_message) = match &p.status {
        PlacementStatus::Queued => (None, None, None),
        PlacementStatus::Succeeded(order) => (Some(order.as_str().to_owned()), None, None),
        PlacementStatus::Failed { code, message } => {
            (None, Some(code.clone()), Some(stored_message(message)))
        }
    };
    placement::ActiveModel {
        id: Set(p.id.as_str().to_owned()),
        user_id: Set(p.user_id.as_str().to_owned()),
        event_id: Set(p.event_id.0),
        product_id: Set(p.product_id.0),
        bucket_no: Set(i32_of(p.bucket_no())),
        quantity: Set(i32_of(p.quantity)),
        bucket_split: Set(p.allocation.stored_split()),
        unit_price: Set(p.unit_price),
        idempotency_key: Set(p.idempotency_key.as_ref().map(|k| k.as_str().to_owned())),
        request_fingerprint: Set(p.request_fingerprint.clone()),
        status: Set(p.status.as_str().to_owned()),
        order_id: Set(order_id),
        error_code: Set(error_code),
        error_message: Set(error_message),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
    }
}
