//! Defect 6: a `SOLD_OUT` answer that was already on its way when a cancel brought
//! units back must not hide those units behind the sold-out flag.

use std::time::Duration;

use flash_sale_client::{ErrorCode, OrderPlaceCmd, PlaceOrderAnswer};
use flash_sale_tests::{Backend, TestApp, online_product};

crate::on_every_stack!(a_late_sold_out_answer_does_not_hide_units_a_cancel_returned);

async fn a_late_sold_out_answer_does_not_hide_units_a_cancel_returned(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    let (_, p) = online_product(&t.admin, 1, 1).await;
    let cmd = OrderPlaceCmd {
        product_id: p.id,
        quantity: 1,
    };
    let alice = t.buyer("alice");
    let PlaceOrderAnswer::Created(order) = alice.place_order(&cmd, None).await.expect("order")
    else {
        panic!("sync answers 201");
    };

    // `late` finds nothing left; its answer is held up on the way back …
    let gate = faults.pause_after("reserve", "late");
    let late = t.buyer("late");
    let late_cmd = cmd;
    let refused = tokio::spawn(async move { late.place_order(&late_cmd, None).await });
    gate.reached().await;
    // … while alice cancels and her unit comes back (and every instance hears it).
    alice.cancel(&order.id).await.expect("cancelled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.open();
    let answer = refused.await.expect("task").expect_err("it saw no stock");
    assert_eq!(answer.code(), Some(ErrorCode::SoldOut));

    // The unit alice returned sells.
    let answer = t.buyer("carol").place_order(&cmd, None).await;
    assert!(
        matches!(answer, Ok(PlaceOrderAnswer::Created(_))),
        "the returned unit is hidden: {answer:?}"
    );
    t.snapshot(p.id).await.assert_invariants(1);
    t.stop().await;
}
