//! The defects of issue 11, each forced through a fault plan at the ports: a reply
//! lost after the work was done, a Redis error in the middle of a re-lay, an order
//! that cannot expire, a publish that failed after the broker took the task, a
//! broker that is down for two seconds.

use std::time::{Duration, Instant};

use flash_sale_client::{
    ErrorCode, OrderPlaceCmd, OrderStatusDto, PlaceOrderAnswer, PlacementStatusDto, StrategyDto,
};
use flash_sale_tests::{Backend, TestApp, online_product, sale};
use futures::StreamExt;

use super::settled;

crate::on_every_stack!(
    a_cancel_whose_answer_was_lost_is_finished_by_its_retry,
    a_placement_failed_with_a_lost_answer_still_gives_its_units_back,
    a_batch_whose_commit_answer_was_lost_settles_every_hold,
    a_failed_re_lay_never_leaves_the_product_suspended,
    one_order_that_cannot_expire_does_not_stop_the_others,
    a_publish_that_failed_after_the_task_was_taken_answers_202,
    a_broker_down_for_two_seconds_costs_no_unit_and_no_false_503,
);

fn one(product_id: i64) -> OrderPlaceCmd {
    OrderPlaceCmd {
        product_id,
        quantity: 1,
    }
}

/// Defect 2: the release committed, its answer was lost; the retry (same token)
/// recognises its own work — the buyer is told the truth and the units come back.
async fn a_cancel_whose_answer_was_lost_is_finished_by_its_retry(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    let (_, p) = online_product(&t.admin, 5, 1).await;
    let buyer = t.buyer("lost-reply");
    let Ok(PlaceOrderAnswer::Created(order)) = buyer.place_order(&one(p.id), None).await else {
        panic!("an order");
    };
    faults.fail_after("release", 1);
    let cancelled = buyer.cancel(&order.id).await.expect("the cancel succeeded");
    assert_eq!(cancelled.status, OrderStatusDto::Cancelled);
    settled(&t.admin, p.id, Duration::from_secs(5)).await;
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert_eq!((inventory.cache_available, inventory.db_available), (5, 5));
    t.snapshot(p.id).await.assert_invariants(1);
    t.stop().await;
}

/// Defect 1/2: the consumer failed a placement and the answer was lost: its hold
/// still ends (the recovery job asks the database), and its units sell again.
async fn a_placement_failed_with_a_lost_answer_still_gives_its_units_back(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |s| {
        s.stock.recovery_after = flash_sale::config::HumanDuration(Duration::from_secs(3));
    })
    .await;
    let (_, p) = sale(&t.admin, Some(StrategyDto::Async), 1, 1, None).await;
    faults.fail("fulfil", usize::MAX);
    faults.fail_after("fail", 1);
    let buyer = t.buyer("doomed");
    let Ok(PlaceOrderAnswer::Accepted(placement)) = buyer.place_order(&one(p.id), None).await
    else {
        panic!("a placement");
    };
    let done = super::super::placements::resolved(&buyer, &placement).await;
    assert_eq!(done.status, PlacementStatusDto::Failed);
    settled(&t.admin, p.id, Duration::from_secs(30)).await;
    faults.clear();
    let sold = super::sell(|i| t.buyer(&format!("next-{i}")), p.id, 3).await;
    assert_eq!(sold, 1, "the unit sells again");
    t.stop().await;
}

/// Defect 2: a batch committed and its answer was lost; the consumer's retry finds
/// its placements resolved and settles each hold as committed — at once, not after
/// a recovery period.
async fn a_batch_whose_commit_answer_was_lost_settles_every_hold(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    let (_, p) = sale(&t.admin, Some(StrategyDto::Async), 10, 1, None).await;
    faults.fail_after("fulfil", 1);
    let placements: Vec<_> = futures::stream::iter(0..5)
        .map(|i| {
            let buyer = t.buyer(&format!("batch-{i}"));
            async move {
                let Ok(PlaceOrderAnswer::Accepted(placement)) =
                    buyer.place_order(&one(p.id), None).await
                else {
                    panic!("a placement");
                };
                super::super::placements::resolved(&buyer, &placement).await
            }
        })
        .buffer_unordered(5)
        .collect()
        .await;
    assert!(
        placements
            .iter()
            .all(|p| p.status == PlacementStatusDto::Succeeded),
        "{placements:?}"
    );
    // The default recovery period is 30 s: settling within 5 s is the consumer's work.
    settled(&t.admin, p.id, Duration::from_secs(5)).await;
    t.snapshot(p.id).await.assert_invariants(1);
    t.stop().await;
}

/// Defect 3: rewriting the ledger fails and so does ending the suspension; the
/// suspension is a lease, so the product sells again once it runs out.
async fn a_failed_re_lay_never_leaves_the_product_suspended(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    let (_, p) = sale(&t.admin, Some(StrategyDto::Buckets), 20, 1, Some(4)).await;
    t.admin.inventory(p.id).await.expect("loaded");
    faults.fail("load", 1);
    faults.fail("resume", usize::MAX);
    let error = t
        .admin
        .product_buckets(p.id, 2)
        .await
        .expect_err("the re-lay failed");
    assert_eq!(error.status(), Some(503));
    let started = Instant::now();
    let mut i = 0;
    loop {
        i += 1;
        match t
            .buyer(&format!("after-{i}"))
            .place_order(&one(p.id), None)
            .await
        {
            Ok(PlaceOrderAnswer::Created(_)) => break,
            Err(e) if e.code() == Some(ErrorCode::Unavailable) => {}
            other => panic!("{other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still suspended after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.stop().await;
}

/// Defect 4: one order whose release keeps failing does not stop the expiry of the
/// others, which expire within about two seconds of their time.
async fn one_order_that_cannot_expire_does_not_stop_the_others(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |s| {
        s.orders.payment_timeout = flash_sale::config::HumanDuration(Duration::from_secs(1));
    })
    .await;
    let (_, p) = online_product(&t.admin, 20, 1).await;
    let mut orders = Vec::new();
    for i in 0..10 {
        let Ok(PlaceOrderAnswer::Created(order)) = t
            .buyer(&format!("exp-{i}"))
            .place_order(&one(p.id), None)
            .await
        else {
            panic!("an order");
        };
        orders.push(order);
    }
    // The oldest order cannot be released: every attempt fails.
    faults.fail_matching("release", &orders[0].id, usize::MAX);
    let deadline = orders.last().expect("orders").expires_at;
    let started = Instant::now();
    loop {
        let snapshot = t.snapshot(p.id).await;
        let expired = snapshot
            .orders
            .iter()
            .filter(|o| o.status == "expired")
            .count();
        if expired == 9 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{expired} of 9 expired; the one that fails blocks the others"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let late = chrono::Utc::now() - deadline;
    assert!(
        late < chrono::Duration::seconds(3),
        "expired {late} after the last one was due"
    );
    faults.clear();
    t.stop().await;
}

/// Defect 5: the broker took the task (and the consumer wrote the order) but the
/// publish answered an error: the buyer hears 202, not "nothing was consumed".
async fn a_publish_that_failed_after_the_task_was_taken_answers_202(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    let (_, p) = sale(&t.admin, Some(StrategyDto::Async), 5, 1, None).await;
    let gate = faults.pause_after("publish", "late-ack");
    faults.fail_after("publish", 1);
    let buyer = t.buyer("late-ack");
    let answering = tokio::spawn({
        let buyer = buyer.clone();
        async move { buyer.place_order(&one(p.id), None).await }
    });
    gate.reached().await;
    // The consumer turns the task into an order while the publish has not answered.
    let started = Instant::now();
    while !t
        .snapshot(p.id)
        .await
        .orders
        .iter()
        .any(|o| o.user_id == "late-ack")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never consumed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gate.open();
    let answer = answering.await.expect("task");
    let Ok(PlaceOrderAnswer::Accepted(placement)) = answer else {
        panic!("the order exists, so the answer is 202: {answer:?}");
    };
    let done = super::super::placements::resolved(&buyer, &placement).await;
    assert_eq!(done.status, PlacementStatusDto::Succeeded);
    settled(&t.admin, p.id, Duration::from_secs(10)).await;
    t.snapshot(p.id).await.assert_invariants(1);
    t.stop().await;
}

/// The broker is down for two seconds mid-sale: every answer is a 202 that becomes an
/// order, or a 503 with nothing consumed; afterwards every unit sells.
async fn a_broker_down_for_two_seconds_costs_no_unit_and_no_false_503(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    let (_, p) = sale(&t.admin, Some(StrategyDto::Async), 300, 1, None).await;
    let down = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        faults.fail("publish", usize::MAX);
        tokio::time::sleep(Duration::from_secs(2)).await;
        faults.clear();
    };
    let buying = futures::stream::iter(0..200)
        .map(|i| {
            let buyer = t.buyer(&format!("broker-{i}"));
            async move {
                tokio::time::sleep(Duration::from_millis(15 * i)).await;
                let answer = buyer.place_order(&one(p.id), None).await;
                (format!("broker-{i}"), buyer, answer)
            }
        })
        .buffer_unordered(200)
        .collect::<Vec<_>>();
    let (answers, ()) = tokio::join!(buying, down);
    let mut unavailable = 0;
    for (_, buyer, answer) in &answers {
        match answer {
            Ok(PlaceOrderAnswer::Accepted(placement)) => {
                let done = super::super::placements::resolved(buyer, placement).await;
                assert_eq!(done.status, PlacementStatusDto::Succeeded);
            }
            Err(e) if e.code() == Some(ErrorCode::Unavailable) => unavailable += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(unavailable > 0, "the broker was down");
    settled(&t.admin, p.id, Duration::from_secs(10)).await;
    let snapshot = t.snapshot(p.id).await;
    snapshot.assert_invariants(1);
    let held = snapshot.held_by_user();
    for (name, _, answer) in &answers {
        if answer.is_err() {
            assert_eq!(
                held.get(name),
                None,
                "{name} was told 503 but holds an order"
            );
        }
    }
    let left = usize::try_from(snapshot.db_available()).expect("small");
    let sold = super::sell(|i| t.buyer(&format!("rest-{i}")), p.id, left + 5).await;
    assert_eq!(sold, left);
    t.stop().await;
}
