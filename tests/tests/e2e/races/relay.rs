//! Defects 2–4: a re-lay never overwrites a concurrent decrement, carries queued
//! placements to their new buckets, and one that failed halfway (or a strategy
//! switch whose re-lay failed) is retried until the stock ledger matches the
//! database bucket by bucket.

use std::time::Duration;

use flash_sale_client::{PlaceOrderAnswer, PlacementStatusDto, StrategyDto};
use flash_sale_tests::{Backend, TestApp, product, running_event};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, TransactionTrait};

use super::re_arrange;

crate::on_every_stack!(
    a_re_arrangement_never_overwrites_a_decrement_committed_while_it_ran,
    queued_placements_move_with_their_bucket_and_all_succeed,
    a_re_arrangement_that_failed_halfway_is_repaired_bucket_by_bucket,
    a_strategy_switch_whose_re_lay_failed_is_retried,
);

async fn a_re_arrangement_never_overwrites_a_decrement_committed_while_it_ran(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, p) =
        flash_sale_tests::sale(&t.admin, Some(StrategyDto::Buckets), 300, 1, Some(8)).await;

    // Another writer (a late order, a consumer batch) holds bucket 0 with a decrement
    // it has not committed yet when the re-arrangement starts.
    let conn = t.db.connect().await.expect("db");
    let writer = conn.begin().await.expect("begin");
    writer
        .execute_unprepared(&format!(
            "UPDATE stock_buckets SET available = available - 1 \
             WHERE product_id = {} AND bucket_no = 0",
            p.id
        ))
        .await
        .expect("decrement");
    let admin = t.admin.clone();
    let re_arranging =
        tokio::spawn(async move { re_arrange(&admin, p.id, 3, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    writer.commit().await.expect("commit");
    let product = re_arranging.await.expect("task");
    assert_eq!(product.bucket_count, 3);

    let snapshot = t.snapshot(p.id).await;
    assert_eq!(
        snapshot.db_available(),
        299,
        "the committed decrement survives the re-arrangement: {:?}",
        snapshot.buckets
    );
    assert_eq!(snapshot.buckets.iter().map(|b| b.1).sum::<i64>(), 300);
    conn.close().await.expect("close");
    t.stop().await;
}

async fn queued_placements_move_with_their_bucket_and_all_succeed(backend: Backend) {
    // An instance that accepts placements but does not consume them (yet).
    let mut t = TestApp::spawn_with(backend, |s| s.mq.consume = false).await;
    let (_, p) = flash_sale_tests::sale(&t.admin, Some(StrategyDto::Async), 40, 1, Some(8)).await;

    let mut placements = Vec::new();
    for i in 0..24 {
        let buyer = t.buyer(&format!("q-{i}"));
        let answer = flash_sale_tests::place_until_answered(&buyer, p.id, 1, Some("q"))
            .await
            .expect("accepted");
        let PlaceOrderAnswer::Accepted(placement) = answer else {
            panic!("async answers 202");
        };
        placements.push((format!("q-{i}"), placement));
    }
    let product = re_arrange(&t.admin, p.id, 3, Duration::from_secs(25)).await;
    assert_eq!(product.bucket_count, 3);

    // Now a consuming instance takes the queue over: every placement becomes an order.
    t.restart_with(|s| s.mq.consume = true).await;
    for (name, placement) in &placements {
        let done = super::super::placements::resolved(&t.buyer(name), placement).await;
        assert_eq!(
            done.status,
            PlacementStatusDto::Succeeded,
            "a 202 whose units were moved still succeeds: {done:?}"
        );
    }
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (24, 16));
    snapshot.assert_invariants(1);
    assert_eq!(snapshot.buckets.len(), 3);
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    t.stop().await;
}

/// Waits (up to 30 s) until the inventory agrees bucket by bucket with `count`
/// buckets; panics with the last inventory otherwise.
async fn wait_until_repaired(t: &TestApp, product_id: i64, count: usize) {
    let started = std::time::Instant::now();
    loop {
        let inventory = t.admin.inventory(product_id).await.expect("inventory");
        let agree = inventory.buckets.len() == count
            && inventory
                .buckets
                .iter()
                .all(|b| b.cache_available == b.db_available);
        if agree && inventory.consistent {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not repaired within 30 s: {inventory:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn a_re_arrangement_that_failed_halfway_is_repaired_bucket_by_bucket(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    let (_, p) = flash_sale_tests::sale(&t.admin, Some(StrategyDto::Buckets), 40, 1, Some(8)).await;
    t.admin.inventory(p.id).await.expect("loaded");

    // Rewriting the stock ledger fails: whatever the database kept, the ledger comes
    // to agree with it bucket by bucket without anybody calling reconcile.
    faults.fail("load", 1);
    let error = t
        .admin
        .product_buckets(p.id, 3)
        .await
        .expect_err("the ledger could not be rewritten");
    assert_eq!(error.status(), Some(503), "{error}");
    let count = t.snapshot(p.id).await.buckets.len();
    wait_until_repaired(&t, p.id, count).await;

    // The ledger is rewritten, then the answer is lost: the re-lay fails after the
    // ledger changed.
    faults.fail_after("load", 1);
    let error = t
        .admin
        .product_buckets(p.id, 5)
        .await
        .expect_err("the answer was lost");
    assert_eq!(error.status(), Some(503), "{error}");
    let count = t.snapshot(p.id).await.buckets.len();
    wait_until_repaired(&t, p.id, count).await;

    let sold = futures::stream::iter(0..50)
        .map(|i| {
            let buyer = t.buyer(&format!("h-{i}"));
            async move { flash_sale_tests::place_until_answered(&buyer, p.id, 1, None).await }
        })
        .buffer_unordered(10)
        .collect::<Vec<_>>()
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count();
    assert_eq!(sold, 40, "every unit sells once the layouts agree");
    t.snapshot(p.id).await.assert_invariants(1);
    t.stop().await;
}

async fn a_strategy_switch_whose_re_lay_failed_is_retried(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("flash-sale.toml");
    let write = |strategy: &str| {
        std::fs::write(
            &file,
            format!("[ordering]\ndefault_strategy = \"{strategy}\"\nbucket_count = 8\n"),
        )
        .expect("config written");
    };
    write("sync");
    let source = file.clone();
    let (t, faults) = TestApp::spawn_faulty(backend, move |s| s.source = Some(source)).await;
    let event = t
        .admin
        .create_event(&running_event("Switch", None))
        .await
        .expect("event");
    let p = t
        .admin
        .create_product(event.id, &product("Lamp", 64, 1))
        .await
        .expect("product");
    t.admin.event_online(event.id).await.expect("online");
    t.admin.inventory(p.id).await.expect("loaded");

    // The first attempts to re-lay the stock for the new strategy fail.
    faults.fail("suspend", 2);
    write("buckets");
    let started = std::time::Instant::now();
    loop {
        let product = t.admin.admin_event(event.id).await.expect("event").products[0].clone();
        if product.bucket_count == 8 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the switch's re-lay was never retried: {product:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_until_repaired(&t, p.id, 8).await;
    t.stop().await;
}
