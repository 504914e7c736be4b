//! Sale fixtures and request helpers shared by the end-to-end tests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use flash_sale_client::{
    ClientError, ErrorCode, EventCreateCmd, EventDto, FlashSaleClient, OrderPlaceCmd,
    PlaceOrderAnswer, ProductCreateCmd, ProductDto, StrategyDto,
};

/// A time `minutes` from now, whole seconds.
pub fn minutes_from_now(minutes: i64) -> DateTime<Utc> {
    let now = Utc::now() + chrono::Duration::minutes(minutes);
    DateTime::from_timestamp(now.timestamp(), 0).expect("valid time")
}

/// An event running from an hour ago to a day from now.
pub fn running_event(title: &str, strategy: Option<StrategyDto>) -> EventCreateCmd {
    EventCreateCmd {
        title: title.to_owned(),
        description: Some(format!("{title} — test event")),
        starts_at: minutes_from_now(-60),
        ends_at: minutes_from_now(24 * 60),
        strategy,
    }
}

/// A product with `stock` units and `per_user_limit`.
pub fn product(title: &str, stock: i64, per_user_limit: u32) -> ProductCreateCmd {
    ProductCreateCmd {
        title: title.to_owned(),
        description: None,
        original_price: 10_000,
        flash_price: 4_999,
        stock,
        per_user_limit: Some(per_user_limit),
        bucket_count: None,
    }
}

/// An online event with one product: the usual starting point.
pub async fn online_product(
    admin: &FlashSaleClient,
    stock: i64,
    per_user_limit: u32,
) -> (EventDto, ProductDto) {
    let event = admin
        .create_event(&running_event("Sale", None))
        .await
        .expect("event");
    let product = admin
        .create_product(event.id, &product("Phone", stock, per_user_limit))
        .await
        .expect("product");
    let event = admin.event_online(event.id).await.expect("online");
    (event, product)
}

/// An online event selling with `strategy` (`None`: follow the config) with one
/// product: `stock` units, `per_user_limit`, `buckets` buckets (`None`: the default).
pub async fn sale(
    admin: &FlashSaleClient,
    strategy: Option<StrategyDto>,
    stock: i64,
    per_user_limit: u32,
    buckets: Option<u32>,
) -> (EventDto, ProductDto) {
    let event = admin
        .create_event(&running_event("Sale", strategy))
        .await
        .expect("event");
    let mut spec = product("Item", stock, per_user_limit);
    spec.bucket_count = buckets;
    let product = admin
        .create_product(event.id, &spec)
        .await
        .expect("product");
    let event = admin.event_online(event.id).await.expect("online");
    (event, product)
}

/// An order of one unit of `product_id`.
pub fn one_unit(product_id: i64) -> OrderPlaceCmd {
    OrderPlaceCmd {
        product_id,
        quantity: 1,
    }
}

/// Sends an order of `quantity` units (with `key`, if any) again while the answer is a
/// 503 or a transport error; the answer (201 or 202), or the rejection's code.
///
/// # Panics
/// When the service stays unavailable for 100 tries, or a rejection has no envelope.
pub async fn place_until_answered(
    buyer: &FlashSaleClient,
    product_id: i64,
    quantity: u32,
    key: Option<&str>,
) -> Result<PlaceOrderAnswer, ErrorCode> {
    let cmd = OrderPlaceCmd {
        product_id,
        quantity,
    };
    for _ in 0..100 {
        match buyer.place_order(&cmd, key).await {
            Ok(answer) => return Ok(answer),
            Err(ClientError::Transport(_)) => {}
            Err(e) if e.code() == Some(ErrorCode::Unavailable) => {}
            Err(e) => return Err(e.code().unwrap_or_else(|| panic!("no envelope: {e}"))),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("still unavailable after 100 tries");
}
