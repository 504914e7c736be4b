//! Faults (issue 11): the process dies, a dependency fails or stalls, the network
//! splits — and every acknowledged order survives, every unit the database calls
//! available sells again, and no buyer told 503 holds an order.

mod crash;
mod defects;
mod locks;
mod network;
mod shutdown;

use std::time::{Duration, Instant};

use flash_sale_client::{ErrorCode, FlashSaleClient, OrderPlaceCmd, PlaceOrderAnswer};

/// Waits (up to `patience`) until the inventory is consistent with nothing in
/// flight; panics with the last one otherwise.
pub(crate) async fn settled(admin: &FlashSaleClient, product_id: i64, patience: Duration) {
    let started = Instant::now();
    loop {
        let inventory = admin.inventory(product_id).await;
        if let Ok(inventory) = &inventory
            && inventory.consistent
            && inventory.in_flight == 0
        {
            return;
        }
        assert!(
            started.elapsed() < patience,
            "not settled within {patience:?}: {inventory:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One unit for each of `buyers` new buyers (202s followed to their end); how many
/// sold. Only sales or `SOLD_OUT` are acceptable answers.
pub(crate) async fn sell(
    buyer: impl Fn(usize) -> FlashSaleClient,
    product_id: i64,
    buyers: usize,
) -> usize {
    use futures::StreamExt;
    let cmd = OrderPlaceCmd {
        product_id,
        quantity: 1,
    };
    let answers = futures::stream::iter(0..buyers)
        .map(|i| {
            let client = buyer(i);
            async move {
                match flash_sale_tests::place_until_answered(
                    &client,
                    cmd.product_id,
                    1,
                    Some("rest"),
                )
                .await?
                {
                    PlaceOrderAnswer::Created(_) => Ok(()),
                    PlaceOrderAnswer::Accepted(p) => {
                        super::placements::outcome(&client, &p).await.map(|_| ())
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(()) | Err(ErrorCode::SoldOut))),
        "only sales or SOLD_OUT: {answers:?}"
    );
    answers.iter().filter(|a| a.is_ok()).count()
}
