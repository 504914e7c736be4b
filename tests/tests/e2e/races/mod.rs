//! Admin operations racing buyers (issue 10): re-arrangements, strategy switches,
//! returns, reconcile and the sold-out flag, each defect pinned by a test that forces
//! the interleaving through a fault plan at the ports, and a race suite that runs
//! them all at once.

mod flags;
mod keys;
mod quantity;
mod reconcile;
mod relay;
mod returns;
mod suite;

use std::time::Duration;

use flash_sale_client::{ErrorCode, FlashSaleClient, ProductDto};
use flash_sale_domain::UserId;
use flash_sale_domain::stock::home_bucket;

/// Re-arranges the product's buckets, retrying while the service answers 503 (the
/// re-lay waits for a quiet moment), for up to `patience`.
pub(crate) async fn re_arrange(
    admin: &FlashSaleClient,
    product_id: i64,
    count: u32,
    patience: Duration,
) -> ProductDto {
    let started = std::time::Instant::now();
    loop {
        match admin.product_buckets(product_id, count).await {
            Ok(product) => return product,
            Err(e) if e.code() == Some(ErrorCode::Unavailable) && started.elapsed() < patience => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("re-arranging to {count} buckets: {e}"),
        }
    }
}

/// A buyer name whose home bucket among `count` is at least `from`.
pub(crate) fn buyer_homed_at_or_after(prefix: &str, count: u32, from: u32) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|name| home_bucket(&UserId::parse(name).expect("valid"), count) >= from)
        .expect("some name hashes there")
}
