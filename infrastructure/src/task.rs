//! A placement as the service writes it outside the database: the body of a RocketMQ
//! message, and (with its allocation apart) the record a Redis reservation keeps.

use chrono::{DateTime, Utc};
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::event::EventId;
use flash_sale_domain::order::IdempotencyKey;
use flash_sale_domain::placement::{Placement, PlacementId, PlacementStatus};
use flash_sale_domain::product::ProductId;
use serde::{Deserialize, Serialize};

/// A placement on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlacementTask {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) event_id: i64,
    pub(crate) product_id: i64,
    pub(crate) bucket_no: u32,
    /// The parts (`3:1,5:1`) when the units came from several buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bucket_split: Option<String>,
    pub(crate) quantity: u32,
    pub(crate) unit_price: i64,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) request_fingerprint: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl From<&Placement> for PlacementTask {
    fn from(p: &Placement) -> Self {
        Self {
            id: p.id.as_str().to_owned(),
            user_id: p.user_id.as_str().to_owned(),
            event_id: p.event_id.0,
            product_id: p.product_id.0,
            bucket_no: p.bucket_no(),
            bucket_split: p.allocation.stored_split(),
            quantity: p.quantity,
            unit_price: p.unit_price,
            idempotency_key: p.idempotency_key.as_ref().map(|k| k.as_str().to_owned()),
            request_fingerprint: p.request_fingerprint.clone(),
            created_at: p.created_at,
        }
    }
}

impl PlacementTask {
    pub(crate) fn into_placement(self) -> Option<Placement> {
        Some(Placement {
            id: PlacementId::parse(&self.id)?,
            user_id: UserId::parse(&self.user_id).ok()?,
            event_id: EventId(self.event_id),
            product_id: ProductId(self.product_id),
            allocation: Allocation::from_stored(
                self.bucket_no,
                self.quantity,
                self.bucket_split.as_deref(),
            )?,
            quantity: self.quantity,
            unit_price: self.unit_price,
            idempotency_key: match self.idempotency_key {
                Some(k) => Some(IdempotencyKey::parse(&k).ok()?),
                None => None,
            },
            request_fingerprint: self.request_fingerprint,
            status: PlacementStatus::Queued,
            created_at: self.created_at,
            updated_at: self.created_at,
        })
    }
}
