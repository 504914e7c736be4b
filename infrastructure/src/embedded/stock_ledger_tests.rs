//! The embedded ledger's contract, without a database.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use flash_sale_domain::gateway::HoldKind;

use super::*;

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid")
}

fn buckets(available: &[i64]) -> Vec<StockBucket> {
    available
        .iter()
        .zip(0..)
        .map(|(&available, bucket_no)| StockBucket {
            product_id: ProductId(1),
            bucket_no,
            total: available,
            available,
        })
        .collect()
}

fn named<'a>(user: &'a UserId, quantity: u32, limit: u32, token: &'a str) -> ReserveRequest<'a> {
    ReserveRequest {
        token,
        ..request(user, quantity, limit)
    }
}

fn request(user: &UserId, quantity: u32, limit: u32) -> ReserveRequest<'_> {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    let token = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
    ReserveRequest {
        product_id: ProductId(1),
        user_id: user,
        quantity,
        limit,
        token: Box::leak(token.into_boxed_str()),
        kind: HoldKind::Order,
        placement: None,
    }
}

fn suspension(owner: &str) -> Suspension {
    Suspension {
        owner: owner.to_owned(),
        ttl: Duration::from_secs(5),
    }
}

async fn view(ledger: &EmbeddedStockLedger) -> LedgerView {
    ledger
        .view(ProductId(1))
        .await
        .expect("view")
        .expect("loaded")
}

fn reserved(reservation: Result<Reservation, GatewayError>) -> Allocation {
    match reservation {
        Ok(Reservation::Reserved { allocation, .. }) => allocation,
        other => panic!("not reserved: {other:?}"),
    }
}

#[tokio::test]
async fn a_product_must_be_loaded_before_it_sells() {
    let ledger = EmbeddedStockLedger::new();
    let alice = user("alice");
    assert_eq!(
        ledger.reserve(request(&alice, 1, 1)).await.ok(),
        Some(Reservation::NotLoaded)
    );
    ledger
        .load(ProductId(1), &buckets(&[3]), &[], &[])
        .await
        .expect("loads");
    assert_eq!(
        ledger.reserve(request(&alice, 1, 1)).await.ok(),
        Some(Reservation::Reserved {
            allocation: Allocation::single(0, 1),
            left: 2
        })
    );
}

#[tokio::test]
async fn the_quota_is_checked_before_stock_is_taken() {
    let ledger = EmbeddedStockLedger::new();
    let alice = user("alice");
    ledger
        .load(ProductId(1), &buckets(&[10]), &[(alice.clone(), 2)], &[])
        .await
        .expect("loads");
    assert_eq!(
        ledger.reserve(request(&alice, 1, 2)).await.ok(),
        Some(Reservation::LimitExceeded { used: 2 })
    );
    assert_eq!(
        view(&ledger).await.available,
        [10],
        "a refused request burns no stock"
    );
}

#[tokio::test]
async fn a_rebuilt_ledger_holds_the_queued_placements_until_they_settle() {
    let ledger = EmbeddedStockLedger::new();
    let alice = user("alice");
    let queued = InFlight {
        token: "p1".into(),
        user_id: alice.clone(),
        allocation: Allocation::single(0, 2),
    };
    ledger
        .load(
            ProductId(1),
            &buckets(&[3]),
            &[(alice.clone(), 2)],
            &[queued],
        )
        .await
        .expect("loads");
    let seen = view(&ledger).await;
    assert_eq!((seen.available, seen.in_flight), (vec![1], vec![2]));
    assert_eq!(seen.holds.len(), 1);
    assert_eq!(seen.holds[0].kind, HoldKind::Placement);
    ledger
        .settle(
            ProductId(1),
            "p1",
            &Allocation::single(0, 2),
            Settlement::Released,
        )
        .await
        .expect("settles");
    let seen = view(&ledger).await;
    assert_eq!((seen.available, seen.in_flight), (vec![3], vec![0]));
    assert!(seen.holds.is_empty());
    reserved(ledger.reserve(request(&alice, 2, 2)).await);
}

#[tokio::test]
async fn an_empty_home_bucket_sends_the_buyer_to_another() {
    let ledger = EmbeddedStockLedger::new();
    ledger
        .load(ProductId(1), &buckets(&[0, 0, 0, 1]), &[], &[])
        .await
        .expect("loads");
    let bob = user("bob");
    assert_eq!(
        reserved(ledger.reserve(request(&bob, 1, 5)).await),
        Allocation::single(3, 1)
    );
    assert_eq!(
        ledger.reserve(request(&bob, 1, 5)).await.ok(),
        Some(Reservation::SoldOut { left: 0 })
    );
}

#[tokio::test]
async fn units_come_from_several_buckets_when_no_single_one_holds_them() {
    let ledger = EmbeddedStockLedger::new();
    ledger
        .load(ProductId(1), &buckets(&[1, 0, 1, 1]), &[], &[])
        .await
        .expect("loads");
    let carol = user("carol");
    let allocation = reserved(ledger.reserve(named(&carol, 2, 5, "c1")).await);
    assert_eq!((allocation.quantity(), allocation.parts().len()), (2, 2));
    assert_eq!(view(&ledger).await.available.iter().sum::<i64>(), 1);
    assert_eq!(
        ledger.reserve(request(&carol, 2, 5)).await.ok(),
        Some(Reservation::SoldOut { left: 1 }),
        "one unit left is too few for two, and nothing is taken"
    );
    assert_eq!(view(&ledger).await.available.iter().sum::<i64>(), 1);
    ledger
        .settle(ProductId(1), "c1", &allocation, Settlement::Released)
        .await
        .expect("settles");
    assert_eq!(
        view(&ledger).await.available,
        [1, 0, 1, 1],
        "each bucket got its own back"
    );
}

#[tokio::test]
async fn settling_keeps_available_plus_in_flight_equal_to_what_the_database_holds() {
    let ledger = EmbeddedStockLedger::new();
    let (alice, bob) = (user("alice"), user("bob"));
    ledger
        .load(ProductId(1), &buckets(&[5]), &[], &[])
        .await
        .expect("loads");
    let a = reserved(ledger.reserve(named(&alice, 2, 5, "ta")).await);
    let b = reserved(ledger.reserve(named(&bob, 1, 5, "tb")).await);
    assert_eq!(
        reserved(ledger.reserve(named(&bob, 1, 5, "tb")).await),
        b,
        "a retried reservation answers the first"
    );
    let seen = view(&ledger).await;
    assert_eq!(
        (seen.available[0], seen.in_flight[0], seen.holds.len()),
        (2, 3, 2)
    );
    ledger
        .settle(ProductId(1), "ta", &a, Settlement::Committed)
        .await
        .expect("settles");
    for _ in 0..2 {
        ledger
            .settle(ProductId(1), "tb", &b, Settlement::Released)
            .await
            .expect("settles; the second time changes nothing");
    }
    ledger
        .settle(ProductId(1), "never-reserved", &b, Settlement::Committed)
        .await
        .expect("changes nothing");
    let seen = view(&ledger).await;
    assert_eq!((seen.available[0], seen.in_flight[0]), (3, 0));
    reserved(ledger.reserve(request(&bob, 1, 1)).await);
}

#[tokio::test]
async fn many_threads_never_oversell_or_pass_a_limit() {
    let ledger = Arc::new(EmbeddedStockLedger::new());
    ledger
        .load(ProductId(1), &buckets(&[40, 40, 20]), &[], &[])
        .await
        .expect("loads");
    let mut tasks = Vec::new();
    for i in 0..400 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let user = user(&format!("u{}", i % 150));
            ledger
                .reserve(request(&user, 1 + i % 2, 3))
                .await
                .expect("answers")
        }));
    }
    let mut units = 0;
    for task in tasks {
        if let Reservation::Reserved { allocation, .. } = task.await.expect("joins") {
            units += allocation.quantity();
        }
    }
    assert_eq!(units, 100);
    let seen = view(&ledger).await;
    assert_eq!(seen.available, [0, 0, 0]);
    assert_eq!(seen.in_flight.iter().sum::<i64>(), 100);
}

#[tokio::test]
async fn a_suspension_blocks_new_work_shows_what_is_in_progress_and_ends_by_itself() {
    let ledger = Arc::new(EmbeddedStockLedger::new());
    let alice = user("alice");
    ledger
        .load(ProductId(1), &buckets(&[5]), &[], &[])
        .await
        .expect("loads");
    reserved(ledger.reserve(named(&alice, 1, 5, "ts")).await);
    assert!(
        ledger
            .begin_return(ProductId(1), "r1")
            .await
            .expect("begins")
    );
    assert!(
        ledger
            .suspend(ProductId(1), &suspension("a"))
            .await
            .expect("suspends")
    );
    assert!(
        !ledger
            .suspend(ProductId(1), &suspension("b"))
            .await
            .expect("answers"),
        "one owner at a time"
    );
    let seen = view(&ledger).await;
    assert!(seen.suspended);
    assert_eq!((seen.holds.len(), seen.returns.len()), (1, 1));
    assert_eq!(
        ledger.reserve(request(&alice, 1, 5)).await.ok(),
        Some(Reservation::Suspended)
    );
    assert!(ledger.begin_return(ProductId(1), "r2").await.is_err());
    ledger
        .resume(ProductId(1), &suspension("b"))
        .await
        .expect("ignored");
    assert!(view(&ledger).await.suspended, "only the owner ends it");
    ledger
        .resume(ProductId(1), &suspension("a"))
        .await
        .expect("resumes");
    assert!(!view(&ledger).await.suspended);

    let short = Suspension {
        owner: "c".into(),
        ttl: Duration::from_millis(30),
    };
    assert!(
        ledger
            .suspend(ProductId(1), &short)
            .await
            .expect("suspends")
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(
        !view(&ledger).await.suspended,
        "a lease that is not renewed ends"
    );
    assert!(
        !ledger
            .renew(ProductId(1), &suspension("d"))
            .await
            .expect("answers")
    );
    reserved(ledger.reserve(request(&alice, 1, 5)).await);
}
