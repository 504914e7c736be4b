//! The race suite: for a few seconds everything happens at once on one product —
//! buyers order (one or two units, with keys), cancel, pay or let their orders expire;
//! placements are queued and consumed; an admin re-arranges the buckets, adds and
//! removes stock and reconciles; the strategy is switched through the config file.
//! Afterwards every invariant of DESIGN §3 holds in the database, the stock ledger
//! agrees bucket by bucket with nothing in flight, and every unit the database calls
//! available is sold again by new buyers — exactly that many.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flash_sale_client::{
    ErrorCode, FlashSaleClient, OrderDto, OrderPayCmd, OrderPlaceCmd, PlaceOrderAnswer,
};
use flash_sale_tests::{Backend, TestApp, product, running_event};
use futures::StreamExt;

crate::on_every_stack!(everything_at_once_loses_no_unit_and_sells_what_is_left);
crate::on_rocketmq_stacks!(everything_at_once_loses_no_unit_and_sells_what_is_left);

/// How long the storm lasts.
const STORM: Duration = Duration::from_secs(6);

/// A tiny deterministic generator (no dependency, reproducible per worker).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % sides
    }
}

/// One buyer's order, whatever the strategy: 201, or 202 followed to its end.
async fn order(
    buyer: &FlashSaleClient,
    product_id: i64,
    quantity: u32,
    key: &str,
) -> Result<OrderDto, ErrorCode> {
    match flash_sale_tests::place_until_answered(buyer, product_id, quantity, Some(key)).await? {
        PlaceOrderAnswer::Created(order) => Ok(order),
        PlaceOrderAnswer::Accepted(p) => super::super::placements::outcome(buyer, &p).await,
    }
}

/// Retries an admin action while the service answers 503 (a re-lay waits for a quiet
/// moment); a refusal for too few unsold units is fine in a storm. Whether it was done.
async fn admin_action<T>(
    attempt: impl AsyncFn() -> Result<T, flash_sale_client::ClientError>,
) -> bool {
    for _ in 0..30 {
        match attempt().await {
            Err(e) if e.code() == Some(ErrorCode::Unavailable) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                assert!(
                    matches!(e.code(), Some(ErrorCode::InvalidState)),
                    "an admin action failed: {e}"
                );
                return false;
            }
            Ok(_) => return true,
        }
    }
    false
}

async fn buyers(t: &TestApp, product_id: i64, until: Instant) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let workers = (0..12_u64).map(|w| {
        let next = next.clone();
        async move {
            let mut dice = Dice(w + 1);
            let mut placed = 0;
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let buyer = t.buyer(&format!("storm-{n}"));
                let quantity = 1 + u32::try_from(dice.roll(2)).unwrap_or(0);
                let Ok(order) = order(&buyer, product_id, quantity, &format!("k{n}")).await else {
                    continue;
                };
                placed += 1;
                match dice.roll(3) {
                    0 => {
                        let answer = buyer.cancel(&order.id).await;
                        assert!(
                            answer.is_ok()
                                || answer
                                    .as_ref()
                                    .err()
                                    .and_then(flash_sale_client::ClientError::code)
                                    == Some(ErrorCode::InvalidState)
                                || answer
                                    .as_ref()
                                    .err()
                                    .and_then(flash_sale_client::ClientError::code)
                                    == Some(ErrorCode::Unavailable),
                            "{answer:?}"
                        );
                    }
                    1 => {
                        let pay = OrderPayCmd {
                            transaction_id: format!("tx-{n}"),
                            amount: order.total_price,
                        };
                        let _ = buyer.pay(&order.id, &pay).await;
                    }
                    // The rest stay unpaid and expire.
                    _ => {}
                }
            }
            placed
        }
    });
    futures::future::join_all(workers).await.into_iter().sum()
}

/// What the admin got done: re-arrangements, stock changes, reconciles.
#[derive(Debug, Default)]
struct AdminDone {
    re_arranged: usize,
    stock_changed: usize,
    reconciled: usize,
}

async fn admin(t: &TestApp, product_id: i64, until: Instant) -> AdminDone {
    let mut dice = Dice(99);
    let mut done = AdminDone::default();
    let mut round = 0;
    while Instant::now() < until {
        round += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
        match round % 4 {
            0 | 2 => {
                let count = [1, 3, 5, 8, 16, 7][usize::try_from(dice.roll(6)).unwrap_or(0)];
                done.re_arranged += usize::from(
                    admin_action(async || t.admin.product_buckets(product_id, count).await).await,
                );
            }
            1 => {
                let delta = if dice.roll(2) == 0 { 5 } else { -3 };
                done.stock_changed += usize::from(
                    admin_action(async || t.admin.product_stock(product_id, delta).await).await,
                );
            }
            _ => {
                done.reconciled +=
                    usize::from(admin_action(async || t.admin.reconcile(product_id).await).await);
            }
        }
    }
    done
}

async fn switcher(file: &std::path::Path, until: Instant) {
    let mut round = 0;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        round += 1;
        let strategy = ["async", "sync", "buckets"][round % 3];
        std::fs::write(
            file,
            format!("[ordering]\ndefault_strategy = \"{strategy}\"\nbucket_count = 8\n"),
        )
        .expect("config written");
    }
}

/// Waits until the sale is at rest: nothing pending payment, nothing in flight, the
/// ledger consistent with the database.
async fn at_rest(t: &TestApp, product_id: i64) {
    let started = Instant::now();
    loop {
        let snapshot = t.snapshot(product_id).await;
        let pending = snapshot
            .orders
            .iter()
            .filter(|o| o.status == "pending_payment")
            .count();
        let inventory = t.admin.inventory(product_id).await;
        if pending == 0
            && let Ok(inventory) = &inventory
            && inventory.consistent
            && inventory.in_flight == 0
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "not at rest after 60 s: {pending} pending, {inventory:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn everything_at_once_loses_no_unit_and_sells_what_is_left(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("flash-sale.toml");
    std::fs::write(
        &file,
        "[ordering]\ndefault_strategy = \"buckets\"\nbucket_count = 8\n",
    )
    .expect("config written");
    let source = file.clone();
    let t = TestApp::spawn_with(backend, move |s| {
        s.source = Some(source);
        s.orders.payment_timeout = flash_sale::config::HumanDuration(Duration::from_secs(2));
    })
    .await;
    let event = t
        .admin
        .create_event(&running_event("Storm", None))
        .await
        .expect("event");
    let p = t
        .admin
        .create_product(event.id, &product("Tent", 400, 2))
        .await
        .expect("product");
    t.admin.event_online(event.id).await.expect("online");

    let until = Instant::now() + STORM;
    let (placed, done, ()) = tokio::join!(
        buyers(&t, p.id, until),
        admin(&t, p.id, until),
        switcher(&file, until)
    );
    eprintln!("{backend:?}: {placed} orders placed in the storm; admin {done:?}");
    assert!(placed > 0, "the storm placed orders");
    assert!(
        done.re_arranged > 0 && done.reconciled + done.stock_changed > 0,
        "the admin raced the buyers: {done:?}"
    );

    at_rest(&t, p.id).await;
    let snapshot = t.snapshot(p.id).await;
    snapshot.assert_invariants(2);
    let left = snapshot.db_available();

    // A restart (the ledger is rebuilt from the database) with unpaid orders that no
    // longer expire within the test, so that what sells now stays sold.
    let mut t = t;
    t.restart_with(|s| {
        s.orders.payment_timeout = flash_sale::config::HumanDuration(Duration::from_mins(15));
    })
    .await;

    // Every unit the database calls available sells again: exactly that many.
    let cmd = OrderPlaceCmd {
        product_id: p.id,
        quantity: 1,
    };
    let sold = futures::stream::iter(0..left + 20)
        .map(|i| {
            let buyer = t.buyer(&format!("after-{i}"));
            async move { order(&buyer, cmd.product_id, cmd.quantity, "after").await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let sold_count = sold.iter().filter(|r| r.is_ok()).count();
    assert!(
        sold.iter()
            .all(|r| matches!(r, Ok(_) | Err(ErrorCode::SoldOut))),
        "only sales or SOLD_OUT"
    );
    assert_eq!(
        i64::try_from(sold_count).expect("small"),
        left,
        "every available unit sells again, and no more"
    );
    at_rest_after_sale(&t, p.id).await;
    t.stop().await;
}

/// After the last sale: nothing left, invariants, a consistent inventory.
async fn at_rest_after_sale(t: &TestApp, product_id: i64) {
    let snapshot = t.snapshot(product_id).await;
    assert_eq!(snapshot.db_available(), 0);
    snapshot.assert_invariants(2);
    let started = Instant::now();
    loop {
        let inventory = t.admin.inventory(product_id).await.expect("inventory");
        if inventory.consistent && inventory.in_flight == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "not consistent after the last sale: {inventory:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
