//! Defect 1: a return (cancel, expiry) that read its order before a re-arrangement
//! moved it must give the units back to the bucket the order names *now*.

use std::time::Duration;

use flash_sale_client::{OrderPlaceCmd, PlaceOrderAnswer, StrategyDto};
use flash_sale_tests::{Backend, TestApp};

use super::{buyer_homed_at_or_after, re_arrange};

crate::on_every_stack!(
    a_cancel_racing_a_re_arrangement_returns_its_units_to_the_order_s_new_bucket
);

async fn a_cancel_racing_a_re_arrangement_returns_its_units_to_the_order_s_new_bucket(
    backend: Backend,
) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    let (_, p) = flash_sale_tests::sale(&t.admin, Some(StrategyDto::Buckets), 16, 1, Some(8)).await;

    // A buyer whose units come from bucket 3..7: a bucket the re-arrangement removes.
    let name = buyer_homed_at_or_after("ret", 8, 3);
    let buyer = t.buyer(&name);
    let cmd = OrderPlaceCmd {
        product_id: p.id,
        quantity: 1,
    };
    let PlaceOrderAnswer::Created(order) = buyer.place_order(&cmd, None).await.expect("order")
    else {
        panic!("a buckets order is created at once");
    };
    assert!(order.bucket_no >= 3, "{order:?}");

    // The cancel reads the order, then waits while the product goes 8 → 3 buckets.
    let gate = faults.pause_after("find", &order.id);
    let cancelling = tokio::spawn({
        let buyer = buyer.clone();
        let id = order.id.clone();
        async move { buyer.cancel(&id).await }
    });
    gate.reached().await;
    let product = re_arrange(&t.admin, p.id, 3, Duration::from_secs(10)).await;
    assert_eq!(product.bucket_count, 3);
    gate.open();
    let cancelled = cancelling.await.expect("task").expect("cancelled");
    assert_eq!(
        cancelled.status,
        flash_sale_client::OrderStatusDto::Cancelled
    );

    let snapshot = t.snapshot(p.id).await;
    assert_eq!(
        (snapshot.held(), snapshot.db_available()),
        (0, 16),
        "the cancelled unit is back: {snapshot:?}"
    );
    snapshot.assert_invariants(1);
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
