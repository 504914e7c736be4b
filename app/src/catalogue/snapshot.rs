//! What the shared cache level stores: private snapshots of events and products, in
//! a format of their own (`v2:` keys), so that a change to the public API never
//! changes what instances exchange through Redis — and a change here is a new key
//! version, not a silent misread.

use chrono::{DateTime, Utc};
use flash_sale_domain::Strategy;
use flash_sale_domain::event::{Event, EventId, EventStatus, SaleWindow};
use flash_sale_domain::product::{
    BucketCount, PerUserLimit, Pricing, Product, ProductId, ProductStatus,
};
use flash_sale_domain::text::{Description, Title};
use serde::{Deserialize, Serialize};

use super::ProductEntry;

/// The version of the snapshot format, the prefix of every shared key.
pub(super) const VERSION: &str = "v2";

/// An event as the shared level keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EventSnapshot {
    id: i64,
    title: String,
    description: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    strategy: Option<String>,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl EventSnapshot {
    pub(super) fn of(event: &Event) -> Self {
        Self {
            id: event.id.0,
            title: event.title.as_str().to_owned(),
            description: event.description.as_str().to_owned(),
            starts_at: event.window.starts_at(),
            ends_at: event.window.ends_at(),
            strategy: event.strategy.map(|s| s.as_str().to_owned()),
            status: event.status.as_str().to_owned(),
            created_at: event.created_at,
            updated_at: event.updated_at,
        }
    }

    /// The event back; `None` when a field no longer passes the domain's rules (the
    /// entry is then reloaded from the database).
    pub(super) fn event(&self) -> Option<Event> {
        Some(Event {
            id: EventId(self.id),
            title: Title::parse("title", &self.title).ok()?,
            description: Description::parse("description", &self.description).ok()?,
            window: SaleWindow::new(self.starts_at, self.ends_at, "ends_at").ok()?,
            strategy: match &self.strategy {
                Some(name) => Some(name.parse::<Strategy>().ok()?),
                None => None,
            },
            status: EventStatus::parse(&self.status)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A product and its available units as the shared level keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ProductSnapshot {
    id: i64,
    event_id: i64,
    title: String,
    description: String,
    original_price: i64,
    flash_price: i64,
    stock_total: i64,
    available: i64,
    per_user_limit: u32,
    bucket_count: u32,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ProductSnapshot {
    pub(super) fn of(product: &Product, available: i64) -> Self {
        Self {
            id: product.id.0,
            event_id: product.event_id.0,
            title: product.title.as_str().to_owned(),
            description: product.description.as_str().to_owned(),
            original_price: product.pricing.original(),
            flash_price: product.pricing.flash(),
            stock_total: product.stock_total,
            available,
            per_user_limit: product.per_user_limit.get(),
            bucket_count: product.bucket_count.get(),
            status: product.status.as_str().to_owned(),
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }

    /// The entry back; `None` when a field no longer passes the domain's rules.
    pub(super) fn entry(&self) -> Option<ProductEntry> {
        Some(ProductEntry::new(
            Product {
                id: ProductId(self.id),
                event_id: EventId(self.event_id),
                title: Title::parse("title", &self.title).ok()?,
                description: Description::parse("description", &self.description).ok()?,
                pricing: Pricing::new(self.original_price, self.flash_price).ok()?,
                stock_total: self.stock_total,
                per_user_limit: PerUserLimit::new(self.per_user_limit).ok()?,
                bucket_count: BucketCount::new("bucket_count", self.bucket_count).ok()?,
                status: ProductStatus::parse(&self.status)?,
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            self.available,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("valid")
    }

    #[test]
    fn an_event_comes_back_as_it_went_in() {
        let event = Event {
            id: EventId(4),
            title: Title::parse("title", "Sale").expect("valid"),
            description: Description::parse("description", "").expect("valid"),
            window: SaleWindow::new(at(0), at(3600), "ends_at").expect("valid"),
            strategy: Some(Strategy::Buckets),
            status: EventStatus::Online,
            created_at: at(-60),
            updated_at: at(-30),
        };
        assert_eq!(EventSnapshot::of(&event).event(), Some(event));
    }

    #[test]
    fn a_product_comes_back_as_it_went_in_and_a_broken_one_not_at_all() {
        let product = Product {
            id: ProductId(9),
            event_id: EventId(4),
            title: Title::parse("title", "Phone").expect("valid"),
            description: Description::parse("description", "new").expect("valid"),
            pricing: Pricing::new(1000, 500).expect("valid"),
            stock_total: 100,
            per_user_limit: PerUserLimit::new(2).expect("valid"),
            bucket_count: BucketCount::new("bucket_count", 8).expect("valid"),
            status: ProductStatus::Online,
            created_at: at(0),
            updated_at: at(1),
        };
        let snapshot = ProductSnapshot::of(&product, 42);
        let json = serde_json::to_string(&snapshot).expect("serialises");
        let back: ProductSnapshot = serde_json::from_str(&json).expect("parses");
        assert_eq!(back.entry(), Some(ProductEntry::new(product, 42)));
        let broken = json.replace("\"flash_price\":500", "\"flash_price\":5000");
        let broken: ProductSnapshot = serde_json::from_str(&broken).expect("parses");
        assert_eq!(broken.entry(), None, "a flash price above the original");
    }
}
