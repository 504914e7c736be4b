//! Sale events: the admin's commands and what callers read back.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::check::{Checked, violation, with_cross_rules};
use crate::product::ProductDto;
use crate::serde_util::double_option;

/// How orders for an event are taken (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyDto {
    /// Reserve in the stock ledger, then write the order in the same request.
    Sync,
    /// Reserve, queue the placement, answer 202; a consumer writes the order.
    Async,
    /// Like `sync`, with stock split across buckets to spread contention.
    Buckets,
}

/// Lifecycle status of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatusDto {
    /// Being prepared; invisible to buyers.
    Draft,
    /// Visible to buyers; sells inside its window.
    Online,
    /// Taken off sale; invisible to buyers.
    Offline,
}

/// `POST /admin/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct EventCreateCmd {
    /// 1–200 characters.
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub title: String,
    /// At most 2000 characters.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// When the sale opens (RFC 3339).
    pub starts_at: DateTime<Utc>,
    /// When the sale closes; after `starts_at`.
    pub ends_at: DateTime<Utc>,
    /// Ordering strategy; absent or null follows the configuration.
    #[serde(default)]
    pub strategy: Option<StrategyDto>,
}

/// `PATCH /admin/events/{id}`: any of the create fields; refused while online.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct EventPatchCmd {
    /// 1–200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub title: Option<String>,
    /// At most 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// New opening time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    /// New closing time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Absent: unchanged; null: follow the configuration; a value: that strategy.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<StrategyDto>)]
    pub strategy: Option<Option<StrategyDto>>,
}

/// `GET /admin/events?status=&page=&page_size=`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Validate, IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct EventListQry {
    /// Only events in this status.
    pub status: Option<EventStatusDto>,
    /// 1-based page number (default 1).
    #[validate(range(min = 1, message = "must be at least 1"))]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    pub page: Option<u32>,
    /// Items per page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

/// An event as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventDto {
    /// Event id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Description (empty when none was given).
    pub description: String,
    /// Opening time.
    pub starts_at: DateTime<Utc>,
    /// Closing time (exclusive).
    pub ends_at: DateTime<Utc>,
    /// Lifecycle status.
    pub status: EventStatusDto,
    /// The strategy set on the event; null follows the configuration.
    pub strategy: Option<StrategyDto>,
    /// The strategy orders use now (configuration override, event, default).
    pub effective_strategy: StrategyDto,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An event with its products (`GET` of one event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventDetailDto {
    /// The event.
    #[serde(flatten)]
    pub event: EventDto,
    /// Its products (buyers see online ones only).
    pub products: Vec<ProductDto>,
}

/// The years a sale's times may fall in: RFC 3339 has four-digit years, and a time
/// before the epoch is a mistake.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// The message for a time outside [`YEARS`].
const OUT_OF_RANGE: &str = "must be an RFC 3339 time in the years 1970 to 9999";

/// Adds a violation for each of `times` that lies outside [`YEARS`].
fn times_in_range(
    errors: &mut validator::ValidationErrors,
    times: [(&'static str, Option<DateTime<Utc>>); 2],
) {
    for (field, time) in times {
        if time.is_some_and(|t| !YEARS.contains(&t.year())) {
            violation(errors, field, OUT_OF_RANGE);
        }
    }
}

impl Checked for EventCreateCmd {
    fn check(&self) -> Result<(), validator::ValidationErrors> {
        with_cross_rules(self, |errors| {
            times_in_range(
                errors,
                [
                    ("starts_at", Some(self.starts_at)),
                    ("ends_at", Some(self.ends_at)),
                ],
            );
            if self.ends_at <= self.starts_at {
                violation(errors, "ends_at", "must be after starts_at");
            }
        })
    }
}

impl Checked for EventPatchCmd {
    fn check(&self) -> Result<(), validator::ValidationErrors> {
        with_cross_rules(self, |errors| {
            times_in_range(
                errors,
                [("starts_at", self.starts_at), ("ends_at", self.ends_at)],
            );
            if let (Some(starts_at), Some(ends_at)) = (self.starts_at, self.ends_at)
                && ends_at <= starts_at
            {
                violation(errors, "ends_at", "must be after starts_at");
            }
        })
    }
}

impl Checked for EventListQry {}
