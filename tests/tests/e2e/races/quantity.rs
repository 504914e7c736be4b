//! Defect 7: `SOLD_OUT` means fewer than `quantity` units remain in the whole product,
//! not merely in every single bucket: a request may take its units from several
//! buckets, and a return gives each bucket its own units back.

use flash_sale_client::{OrderDto, OrderPlaceCmd, PlaceOrderAnswer, StrategyDto};
use flash_sale_tests::{Backend, TestApp};
use futures::StreamExt;

crate::on_every_stack!(orders_of_two_units_sell_every_unit_of_eight_buckets);

async fn orders_of_two_units_sell_every_unit_of_eight_buckets(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    // 60 units over 8 buckets: 8,8,8,8,7,7,7,7 — half the buckets end on an odd unit.
    let (_, p) = flash_sale_tests::sale(&t.admin, Some(StrategyDto::Buckets), 60, 2, Some(8)).await;

    let cmd = OrderPlaceCmd {
        product_id: p.id,
        quantity: 2,
    };
    let answers = futures::stream::iter(0..30)
        .map(|i| {
            let buyer = t.buyer(&format!("pair-{i}"));
            async move { buyer.place_order(&cmd, None).await }
        })
        .buffer_unordered(10)
        .collect::<Vec<_>>()
        .await;
    let orders: Vec<OrderDto> = answers
        .into_iter()
        .map(|a| match a {
            Ok(PlaceOrderAnswer::Created(order)) => order,
            other => panic!("30 pairs fit in 60 units: {other:?}"),
        })
        .collect();
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (60, 0));
    snapshot.assert_invariants(2);

    // Every pair cancelled: each bucket gets back exactly the units it gave.
    t.cancel_each_twice(&orders.iter().collect::<Vec<_>>())
        .await;
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (0, 60));
    snapshot.assert_invariants(2);
    assert!(
        snapshot.buckets.iter().all(|b| b.1 == b.2),
        "every bucket holds its own units again: {:?}",
        snapshot.buckets
    );
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    assert!(
        inventory
            .buckets
            .iter()
            .all(|b| b.cache_available == b.db_available),
        "{inventory:?}"
    );
    t.stop().await;
}
