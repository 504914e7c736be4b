//! Domain objects to wire DTOs and back, in one place.

use flash_sale_client as wire;
use flash_sale_domain::Strategy;
use flash_sale_domain::event::{Event, EventStatus};
use flash_sale_domain::ledger::LedgerEntry;
use flash_sale_domain::page::{Page, PageRequest};
use flash_sale_domain::product::{Product, ProductStatus};

/// A strategy on the wire.
pub fn strategy_dto(strategy: Strategy) -> wire::StrategyDto {
    match strategy {
        Strategy::Sync => wire::StrategyDto::Sync,
        Strategy::Async => wire::StrategyDto::Async,
        Strategy::Buckets => wire::StrategyDto::Buckets,
    }
}

/// A strategy from the wire.
pub fn strategy(dto: wire::StrategyDto) -> Strategy {
    match dto {
        wire::StrategyDto::Sync => Strategy::Sync,
        wire::StrategyDto::Async => Strategy::Async,
        wire::StrategyDto::Buckets => Strategy::Buckets,
    }
}

/// An event status from the wire.
pub fn event_status(dto: wire::EventStatusDto) -> EventStatus {
    match dto {
        wire::EventStatusDto::Draft => EventStatus::Draft,
        wire::EventStatusDto::Online => EventStatus::Online,
        wire::EventStatusDto::Offline => EventStatus::Offline,
    }
}

fn event_status_dto(status: EventStatus) -> wire::EventStatusDto {
    match status {
        EventStatus::Draft => wire::EventStatusDto::Draft,
        EventStatus::Online => wire::EventStatusDto::Online,
        EventStatus::Offline => wire::EventStatusDto::Offline,
    }
}

/// An event on the wire; `effective` is the strategy orders use now.
pub fn event_dto(event: &Event, effective: Strategy) -> wire::EventDto {
    wire::EventDto {
        id: event.id.0,
        title: event.title.as_str().to_owned(),
        description: event.description.as_str().to_owned(),
        starts_at: event.window.starts_at(),
        ends_at: event.window.ends_at(),
        status: event_status_dto(event.status),
        strategy: event.strategy.map(strategy_dto),
        effective_strategy: strategy_dto(effective),
        created_at: event.created_at,
        updated_at: event.updated_at,
    }
}

/// A product on the wire with `available` units left to sell.
pub fn product_dto(product: &Product, available: i64) -> wire::ProductDto {
    wire::ProductDto {
        id: product.id.0,
        event_id: product.event_id.0,
        title: product.title.as_str().to_owned(),
        description: product.description.as_str().to_owned(),
        original_price: product.pricing.original(),
        flash_price: product.pricing.flash(),
        stock_total: product.stock_total,
        stock_available: available.max(0),
        sold_out: available <= 0,
        per_user_limit: product.per_user_limit.get(),
        bucket_count: product.bucket_count.get(),
        status: product_status_dto(product.status),
        created_at: product.created_at,
        updated_at: product.updated_at,
    }
}

/// A product status on the wire.
pub fn product_status_dto(status: ProductStatus) -> wire::ProductStatusDto {
    match status {
        ProductStatus::Online => wire::ProductStatusDto::Online,
        ProductStatus::Offline => wire::ProductStatusDto::Offline,
    }
}

/// A ledger row on the wire.
pub fn ledger_entry_dto(entry: LedgerEntry) -> wire::LedgerEntryDto {
    wire::LedgerEntryDto {
        id: entry.id,
        bucket_no: entry.bucket_no,
        delta: entry.delta,
        reason: entry.reason.as_str().to_owned(),
        reference: entry.reference,
        created_at: entry.created_at,
    }
}

/// The page a query asked for.
pub fn page_request(page: Option<u32>, page_size: Option<u32>) -> PageRequest {
    PageRequest {
        page: page.unwrap_or(1).max(1),
        page_size: page_size
            .unwrap_or(wire::page::DEFAULT_PAGE_SIZE)
            .clamp(1, 100),
    }
}

/// A page on the wire.
pub fn page_dto<T, U>(
    page: Page<T>,
    request: PageRequest,
    f: impl FnMut(T) -> U,
) -> wire::PageDto<U> {
    let page = page.map(f);
    wire::PageDto {
        items: page.items,
        page: request.page,
        page_size: request.page_size,
        total: page.total,
    }
}

/// An order status from the wire.
pub fn order_status(dto: wire::OrderStatusDto) -> flash_sale_domain::order::OrderStatus {
    use flash_sale_domain::order::OrderStatus;
    match dto {
        wire::OrderStatusDto::PendingPayment => OrderStatus::PendingPayment,
        wire::OrderStatusDto::Paid => OrderStatus::Paid,
        wire::OrderStatusDto::Cancelled => OrderStatus::Cancelled,
        wire::OrderStatusDto::Expired => OrderStatus::Expired,
    }
}

/// An order on the wire.
pub fn order_dto(order: &flash_sale_domain::order::Order) -> wire::OrderDto {
    use flash_sale_domain::order::OrderStatus;
    wire::OrderDto {
        id: order.id.to_string(),
        user_id: order.user_id.to_string(),
        event_id: order.event_id.0,
        product_id: order.product_id.0,
        bucket_no: order.bucket_no(),
        buckets: order
            .allocation
            .parts()
            .iter()
            .map(|p| wire::OrderBucketDto {
                bucket_no: p.bucket_no,
                quantity: p.units,
            })
            .collect(),
        quantity: order.quantity,
        unit_price: order.unit_price,
        total_price: order.total_price,
        strategy: strategy_dto(order.strategy),
        status: match order.status {
            OrderStatus::PendingPayment => wire::OrderStatusDto::PendingPayment,
            OrderStatus::Paid => wire::OrderStatusDto::Paid,
            OrderStatus::Cancelled => wire::OrderStatusDto::Cancelled,
            OrderStatus::Expired => wire::OrderStatusDto::Expired,
        },
        created_at: order.created_at,
        expires_at: order.expires_at,
        paid_at: order.paid_at,
        transaction_id: order.transaction_id.as_ref().map(|t| t.as_str().to_owned()),
    }
}
