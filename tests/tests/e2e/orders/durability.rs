//! Writes that outlive their trouble: a database failure after the reservation
//! releases it, a restart rebuilds the stock ledger, a client hanging up does not
//! stop its write.

use std::time::Duration;

use flash_sale_client::{ClientError, ErrorCode, FlashSaleClient, OrderStatusDto};
use flash_sale_domain::product::ProductId;
use flash_sale_tests::{Backend, TestApp, online_product};

use super::*;

crate::on_every_stack!(
    a_database_failure_after_the_reservation_releases_it,
    a_restarted_service_rebuilds_its_stock_ledger_from_the_database,
    a_client_hanging_up_mid_write_does_not_stop_the_write,
);

async fn a_database_failure_after_the_reservation_releases_it(backend: Backend) {
    // The order transaction fails after the stock ledger has reserved, exactly where
    // a real outage would hit.
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    faults.fail("place", usize::MAX);
    let (_, p) = online_product(&t.admin, 3, 3).await;
    let alice = t.buyer("alice");

    for key in ["f1", "f2", "f3", "f4"] {
        let error = alice
            .place_order(&cmd(p.id, 1), Some(key))
            .await
            .expect_err("the write fails");
        assert_eq!(
            (error.status(), error.code()),
            (Some(503), Some(ErrorCode::Unavailable))
        );
    }
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert_eq!(
        (
            inventory.cache_available,
            inventory.in_flight,
            inventory.held,
            inventory.db_available
        ),
        (3, 0, 0, 3),
        "every reservation went back"
    );
    assert!(inventory.consistent);
    let snapshot = t.snapshot(p.id).await;
    assert!(snapshot.orders.is_empty(), "nothing sold");
    snapshot.assert_invariants(3);

    faults.clear();
    let order = created(
        alice
            .place_order(&cmd(p.id, 3), Some("f1"))
            .await
            .expect("sells once it is back"),
    );
    assert_eq!(order.quantity, 3, "the buyer's quota was given back too");
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (3, 0));
    snapshot.assert_invariants(3);
    t.stop().await;
}

async fn a_restarted_service_rebuilds_its_stock_ledger_from_the_database(backend: Backend) {
    let mut t = TestApp::spawn(backend).await;
    let (_, p) = online_product(&t.admin, 5, 2).await;
    let quinn = created(
        t.buyer("quinn")
            .place_order(&cmd(p.id, 2), None)
            .await
            .expect("order"),
    );
    created(
        t.buyer("rae")
            .place_order(&cmd(p.id, 1), None)
            .await
            .expect("order"),
    );
    t.restart().await;
    // The start-up warm-up loads the stock of online events from the database before
    // anyone asks for it.
    let stock = t.app.as_ref().expect("running").executors().stock.clone();
    let started = std::time::Instant::now();
    while !stock.is_loaded(ProductId(p.id)).await.expect("asks") {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "not warmed up at start-up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert_eq!((inventory.cache_available, inventory.held), (2, 3));
    assert!(inventory.consistent, "{inventory:?}");
    assert_code(
        t.buyer("quinn").place_order(&cmd(p.id, 1), None).await,
        ErrorCode::LimitExceeded,
    );
    t.buyer("quinn")
        .cancel(&quinn.id)
        .await
        .expect("cancel after restart");
    created(
        t.buyer("quinn")
            .place_order(&cmd(p.id, 2), None)
            .await
            .expect("quota came back"),
    );
    created(
        t.buyer("sam")
            .place_order(&cmd(p.id, 2), None)
            .await
            .expect("the last two"),
    );
    assert_code(
        t.buyer("tia").place_order(&cmd(p.id, 1), None).await,
        ErrorCode::SoldOut,
    );
    t.snapshot(p.id).await.assert_invariants(2);
    t.stop().await;
}

/// Behavioural guard: the write a client abandoned completes. (The mechanism, a task
/// per write, is unit-tested in the adapter; hyper's HTTP/1 server does not cancel
/// handlers on disconnect today, but HTTP/2 resets and shutdown timeouts would.)
async fn a_client_hanging_up_mid_write_does_not_stop_the_write(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    faults.delay_before("release", Duration::from_millis(400));
    let (_, p) = online_product(&t.admin, 3, 3).await;
    let uma = t.buyer("uma");
    let order = created(uma.place_order(&cmd(p.id, 3), None).await.expect("order"));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("client");
    let gave_up = FlashSaleClient::with_http(impatient, t.anon.base_url().to_owned())
        .with_token(t.token("uma", flash_sale_app::Role::Buyer))
        .cancel(&order.id)
        .await;
    assert!(
        matches!(gave_up, Err(ClientError::Transport(_))),
        "{gave_up:?}"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;

    assert_eq!(
        uma.order(&order.id).await.expect("order").status,
        OrderStatusDto::Cancelled
    );
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert_eq!(
        (inventory.cache_available, inventory.in_flight),
        (3, 0),
        "{inventory:?}"
    );
    assert!(inventory.consistent);
    let reconcile = t
        .admin
        .reconcile(p.id)
        .await
        .expect("nothing is left half-way");
    assert_eq!((reconcile.drift_before, reconcile.consistent), (0, true));
    t.snapshot(p.id).await.assert_invariants(3);
    t.stop().await;
}
