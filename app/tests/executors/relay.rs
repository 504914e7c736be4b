//! The re-lay protocol (re-arrangement, reconcile): lock, suspend, wait for quiet,
//! rewrite the ledger from a locked read inside the database transaction — and end
//! the suspension and the lock whatever happened.

use std::time::Duration;

use flash_sale_app::AppError;
use flash_sale_app::product::ReconcileCmdExe;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{
    GatewayError, Hold, HoldKind, LedgerView, Relay, ReturnInProgress,
};

use crate::support::{
    Log, Mocks, PRODUCT, database_reloads, product, relay_through, stock_state, user,
};

fn view(holds: Vec<Hold>) -> LedgerView {
    LedgerView {
        available: vec![25; 4],
        in_flight: vec![0; 4],
        holds,
        returns: Vec::new(),
        suspended: true,
    }
}

fn hold(token: &str, kind: HoldKind) -> Hold {
    Hold {
        token: token.to_owned(),
        kind,
        user_id: user("ann"),
        allocation: Allocation::single(1, 1),
        age: Duration::from_millis(20),
    }
}

/// A product in the ledger, free locks, and every step of the protocol written to
/// `steps`; the ledger shows `holds(n)` on the n-th look (from 0).
fn protocol(steps: &Log<&'static str>, holds: fn(usize) -> Vec<Hold>) -> Mocks {
    let mut mocks = Mocks::new().loaded().free_locks(steps);
    let log = steps.clone();
    mocks
        .ledger
        .expect_suspend()
        .returning(move |product, suspension| {
            assert_eq!(product, PRODUCT);
            assert!(
                suspension.ttl > Duration::ZERO,
                "a lease, not a flag forever"
            );
            log.push("suspend");
            Ok(true)
        });
    mocks.ledger.expect_renew().returning(|_, _| Ok(true));
    let log = steps.clone();
    mocks.ledger.expect_view().returning(move |_| {
        let looks = log.calls().iter().filter(|s| **s == "view").count();
        log.push("view");
        Ok(Some(view(holds(looks))))
    });
    let log = steps.clone();
    mocks
        .ledger
        .expect_load()
        .returning(move |_, buckets, _, _| {
            assert_eq!(buckets.len(), 4);
            log.push("load");
            Ok(())
        });
    logged_resume(&mut mocks, steps);
    mocks
}

/// Every suspension succeeds and is written to `steps` as `"suspend"`.
fn logged_suspend(mocks: &mut Mocks, steps: &Log<&'static str>) {
    let log = steps.clone();
    mocks.ledger.expect_suspend().returning(move |_, _| {
        log.push("suspend");
        Ok(true)
    });
}

/// Every end of a suspension is written to `steps` as `"resume"`.
fn logged_resume(mocks: &mut Mocks, steps: &Log<&'static str>) {
    let log = steps.clone();
    mocks.ledger.expect_resume().returning(move |_, _| {
        log.push("resume");
        Ok(())
    });
}

/// The database re-lays the product over 4 buckets, through the sink.
fn database_relays(mocks: &mut Mocks, steps: &Log<&'static str>) {
    let log = steps.clone();
    mocks
        .products
        .expect_relay()
        .times(1)
        .withf(|id, relay, _, _| *id == PRODUCT && *relay == Relay::Rebucket { count: 4 })
        .returning(move |_, _, _, sink| {
            log.push("relay");
            relay_through(sink, &stock_state(4))
        });
}

#[tokio::test]
async fn a_re_arrangement_locks_suspends_waits_rewrites_and_resumes_in_that_order() {
    let steps = Log::default();
    let mut mocks = protocol(&steps, |_| vec![]);
    database_relays(&mut mocks, &steps);
    let product = mocks
        .build()
        .stock
        .rebucket(PRODUCT, 4)
        .await
        .expect("re-laid");
    assert_eq!(product.bucket_count.get(), 4);
    assert_eq!(
        steps.calls(),
        [
            "lock", "suspend", "view", "relay", "load", "resume", "unlock"
        ],
        "the ledger is rewritten inside the database re-lay, after the quiet moment"
    );
}

#[tokio::test(start_paused = true)]
async fn a_re_arrangement_waits_for_an_order_between_its_reservation_and_settlement() {
    let steps = Log::default();
    let mut mocks = protocol(&steps, |look| {
        if look < 3 {
            vec![hold("order-1", HoldKind::Order)]
        } else {
            vec![]
        }
    });
    database_relays(&mut mocks, &steps);
    mocks
        .build()
        .stock
        .rebucket(PRODUCT, 4)
        .await
        .expect("re-laid");
    assert_eq!(
        steps.calls(),
        [
            "lock", "suspend", "view", "view", "view", "view", "relay", "load", "resume", "unlock"
        ]
    );
}

#[tokio::test]
async fn durable_queued_placements_are_carried_over_without_waiting() {
    let steps = Log::default();
    let mut mocks = protocol(&steps, |_| vec![hold("placement-1", HoldKind::Placement)]);
    // Rows are written for those that are not rows yet (recorded with their holds).
    mocks
        .placements
        .expect_write_rows()
        .times(1)
        .withf(|tokens| tokens == ["placement-1".to_owned()])
        .returning(|tokens| Ok(tokens.iter().cloned().collect()));
    database_relays(&mut mocks, &steps);
    mocks
        .build()
        .stock
        .rebucket(PRODUCT, 4)
        .await
        .expect("re-laid");
    assert_eq!(
        steps.calls(),
        [
            "lock", "suspend", "view", "relay", "load", "resume", "unlock"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_re_arrangement_that_never_gets_quiet_gives_up_and_resumes() {
    let steps = Log::default();
    let mocks = protocol(&steps, |_| vec![hold("order-1", HoldKind::Order)]);
    // No `products.relay` expectation: re-laying under a live order would panic.
    let started = tokio::time::Instant::now();
    let result = mocks.build().stock.rebucket(PRODUCT, 4).await;
    assert!(
        matches!(result, Err(AppError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
    let calls = steps.calls();
    assert_eq!(calls[..2], ["lock", "suspend"]);
    assert_eq!(calls[calls.len() - 2..], ["resume", "unlock"]);
}

#[tokio::test]
async fn a_failed_database_re_lay_still_ends_the_suspension_and_the_lock() {
    let steps = Log::default();
    let mut mocks = protocol(&steps, |_| vec![]);
    mocks
        .products
        .expect_relay()
        .times(1)
        .returning(|_, _, _, _| Err(GatewayError::Unavailable("deadlock victim".into())));
    let result = mocks.build().stock.rebucket(PRODUCT, 4).await;
    assert!(
        matches!(result, Err(AppError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(
        steps.calls(),
        ["lock", "suspend", "view", "resume", "unlock"]
    );
}

#[tokio::test]
async fn a_ledger_rewrite_that_failed_fails_the_re_lay_and_still_resumes() {
    let steps = Log::default();
    let mut mocks = Mocks::new().loaded().free_locks(&steps);
    logged_suspend(&mut mocks, &steps);
    mocks
        .ledger
        .expect_view()
        .returning(|_| Ok(Some(view(vec![]))));
    mocks
        .ledger
        .expect_load()
        .returning(|_, _, _, _| Err(GatewayError::Unavailable("redis went away".into())));
    logged_resume(&mut mocks, &steps);
    mocks
        .products
        .expect_relay()
        .returning(|_, _, _, sink| relay_through(sink, &stock_state(4)));
    let result = mocks.build().stock.rebucket(PRODUCT, 4).await;
    assert!(
        matches!(result, Err(AppError::Unavailable(_))),
        "the database transaction must roll back when the ledger was not rewritten: {result:?}"
    );
    assert_eq!(steps.calls(), ["lock", "suspend", "resume", "unlock"]);
}

#[tokio::test]
async fn a_suspend_that_failed_midway_is_still_resumed() {
    let steps = Log::default();
    let mut mocks = Mocks::new().loaded().free_locks(&steps);
    let log = steps.clone();
    mocks.ledger.expect_suspend().returning(move |_, _| {
        log.push("suspend");
        // The flag may have been written before the connection broke.
        Err(GatewayError::Unavailable("connection reset".into()))
    });
    let log = steps.clone();
    mocks
        .ledger
        .expect_resume()
        .times(1)
        .returning(move |_, _| {
            log.push("resume");
            Ok(())
        });
    let result = mocks.build().stock.rebucket(PRODUCT, 4).await;
    assert!(
        matches!(result, Err(AppError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(steps.calls(), ["lock", "suspend", "resume", "unlock"]);
}

#[tokio::test]
async fn a_second_re_lay_while_one_runs_is_refused() {
    let steps = Log::default();
    let mut mocks = Mocks::new().loaded().free_locks(&steps);
    mocks.ledger.expect_suspend().returning(|_, _| Ok(false));
    mocks.ledger.expect_resume().returning(|_, _| Ok(()));
    let result = mocks.build().stock.rebucket(PRODUCT, 4).await;
    match result {
        Err(AppError::Unavailable(cause)) => {
            assert!(cause.to_string().contains("re-laid already"), "{cause}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(steps.calls(), ["lock", "unlock"]);
}

/// The race behind a flaky two-instance expiry test: an expiry job that waited on the
/// reconcile's suspension announces its (no-op) return the moment the suspension ends.
/// The reconcile reports the state it wrote, read before it resumes — not "inconsistent"
/// because someone else's return had just begun.
#[tokio::test]
async fn a_reconcile_reports_what_it_wrote_not_a_return_that_begins_after_it_resumes() {
    let steps = Log::default();
    let mut mocks = Mocks::new().loaded().free_locks(&steps);
    logged_suspend(&mut mocks, &steps);
    mocks.ledger.expect_renew().returning(|_, _| Ok(true));
    let log = steps.clone();
    mocks.ledger.expect_view().returning(move |_| {
        let resumed = log.calls().contains(&"resume");
        log.push("view");
        let mut view = view(vec![]);
        view.suspended = false;
        if resumed {
            view.returns.push(ReturnInProgress {
                token: "release:expired-elsewhere".to_owned(),
                age: Duration::from_millis(1),
            });
        }
        Ok(Some(view))
    });
    mocks.ledger.expect_load().returning(|_, _, _, _| Ok(()));
    logged_resume(&mut mocks, &steps);
    database_reloads(&mut mocks);
    mocks
        .products
        .expect_find()
        .returning(|_| Ok(Some(product(4))));
    mocks
        .products
        .expect_stock_snapshot()
        .returning(|_, _| Ok((stock_state(4).buckets, std::collections::HashSet::new())));
    mocks.products.expect_ledger_sum().returning(|_| Ok(100));
    mocks.orders.expect_held().returning(|_| Ok(0));
    let stock = mocks.build().stock;
    let reconcile = ReconcileCmdExe::new(stock)
        .execute(PRODUCT.0)
        .await
        .expect("reconciled");
    assert_eq!((reconcile.drift_before, reconcile.repaired), (0, false));
    assert!(
        reconcile.consistent,
        "the reconcile judged a return that began after it: {:?}",
        steps.calls()
    );
    let calls = steps.calls();
    assert_eq!(calls[calls.len() - 2..], ["resume", "unlock"]);
}
