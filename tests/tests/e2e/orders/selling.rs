//! Selling under load: no oversell, no limit passed, no double order; stock changed
//! during a live sale keeps every invariant.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use flash_sale_client::{ErrorCode, FlashSaleClient};
use flash_sale_tests::{Backend, TestApp, online_product, product, running_event};
use futures::StreamExt;

use super::*;

crate::on_every_stack!(
    a_thousand_buyers_never_oversell_pass_their_limit_or_double_order,
    stock_changes_during_a_live_sale_keep_every_invariant,
);

async fn a_thousand_buyers_never_oversell_pass_their_limit_or_double_order(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, p) = online_product(&t.admin, 200, 2).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(400)
        .build()
        .expect("client");
    let base = FlashSaleClient::with_http(http, t.anon.base_url().to_owned());

    // 1,000 buyers, 300 in flight. Every 10th sends three orders at once, every 5th
    // two; each then retries its first request with the same key.
    let attempts = futures::stream::iter(0..1000)
        .map(|i| {
            let buyer =
                base.with_token(t.token(&format!("buyer-{i}"), flash_sale_app::Role::Buyer));
            async move {
                let parallel = if i % 10 == 0 {
                    3
                } else if i % 5 == 0 {
                    2
                } else {
                    1
                };
                let keys: Vec<String> = (0..parallel).map(|k| format!("b{i}-k{k}")).collect();
                let results = futures::future::join_all(
                    keys.iter()
                        .map(|key| place_with_retries(&buyer, p.id, 1, key)),
                )
                .await;
                let retry = place_with_retries(&buyer, p.id, 1, &keys[0]).await;
                (i, results, retry)
            }
        })
        .buffer_unordered(300)
        .collect::<Vec<_>>()
        .await;

    let mut sold = 0;
    let mut ids = HashSet::new();
    for (i, results, retry) in &attempts {
        for result in results {
            match result {
                Ok(order) => {
                    sold += i64::from(order.quantity);
                    assert!(ids.insert(order.id.clone()), "order ids are unique");
                    assert_eq!(order.user_id, format!("buyer-{i}"));
                    assert_eq!(order.total_price, 4_999);
                }
                Err(code) => assert!(
                    matches!(code, ErrorCode::SoldOut | ErrorCode::LimitExceeded),
                    "unexpected rejection {code}"
                ),
            }
        }
        if let Ok(first) = &results[0] {
            assert_eq!(
                retry.as_ref().map(|o| &o.id),
                Ok(&first.id),
                "a retried key replays its order"
            );
        }
    }
    assert_eq!(sold, 200, "every unit sold exactly once");
    let limited = attempts
        .iter()
        .flat_map(|(_, results, _)| results)
        .filter(|r| matches!(r, Err(ErrorCode::LimitExceeded)))
        .count();

    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.held(), 200);
    assert_eq!(snapshot.db_available(), 0);
    snapshot.assert_invariants(2);
    assert_eq!(
        snapshot.orders.len(),
        200,
        "one row per unit sold, no duplicates"
    );
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    assert_eq!(
        (
            inventory.held,
            inventory.cache_available,
            inventory.in_flight
        ),
        (200, 0, 0)
    );
    eprintln!(
        "sold 200 of 200 to {} buyers; {limited} limit rejections",
        snapshot.held_by_user().len()
    );

    // Cancel a third of the orders, each twice at once: each is released exactly once.
    let orders: Vec<(String, String)> = snapshot
        .orders
        .iter()
        .map(|o| (o.user_id.clone(), o.id.clone()))
        .collect();
    let to_cancel: Vec<&(String, String)> = orders.iter().step_by(3).collect();
    let cancels = futures::stream::iter(to_cancel.iter().copied())
        .map(|(user, id)| {
            let buyer = base.with_token(t.token(user, flash_sale_app::Role::Buyer));
            async move {
                let (a, b) = tokio::join!(buyer.cancel(id), buyer.cancel(id));
                [a, b]
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    for pair in &cancels {
        let ok = pair.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            ok, 1,
            "exactly one of two concurrent cancels wins: {pair:?}"
        );
        let loser = pair
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("one fails");
        assert_eq!(loser.code(), Some(ErrorCode::InvalidState));
    }
    let returned = i64::try_from(to_cancel.len()).expect("small");
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.db_available(), returned);
    snapshot.assert_invariants(2);
    assert!(t.admin.inventory(p.id).await.expect("inventory").consistent);

    // Exactly those units sell again, to new buyers.
    let resold = futures::stream::iter(0..(returned * 2))
        .map(|i| {
            let buyer = base.with_token(t.token(&format!("late-{i}"), flash_sale_app::Role::Buyer));
            async move { place_with_retries(&buyer, p.id, 1, &format!("late-{i}")).await }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    let again = resold.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        i64::try_from(again).expect("small"),
        returned,
        "returned units sell again"
    );
    assert!(
        resold
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(ErrorCode::SoldOut)))
    );
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (200, 0));
    snapshot.assert_invariants(2);
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    t.stop().await;
}

async fn stock_changes_during_a_live_sale_keep_every_invariant(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let event = t
        .admin
        .create_event(&running_event("Live", None))
        .await
        .expect("event");
    let mut spec = product("Split", 60, 1);
    spec.bucket_count = Some(4);
    let p = t
        .admin
        .create_product(event.id, &spec)
        .await
        .expect("product");
    t.admin.event_online(event.id).await.expect("online");

    let buyers = futures::stream::iter(0..150)
        .map(|i| {
            let buyer = t.buyer(&format!("live-{i}"));
            async move { place_with_retries(&buyer, p.id, 1, "k").await }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>();
    let admin = async {
        let mut moved = 0_i64;
        for delta in [20, -10, 15, -5, 10] {
            match t.admin.product_stock(p.id, delta).await {
                Ok(_) => moved += delta,
                Err(e) => assert_eq!(e.code(), Some(ErrorCode::InvalidState), "{e}"),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        moved
    };
    let (results, moved) = tokio::join!(buyers, admin);
    let sold = i64::try_from(results.iter().filter(|r| r.is_ok()).count()).expect("small");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(ErrorCode::SoldOut)))
    );

    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.stock_total, 60 + moved);
    assert_eq!(snapshot.held(), sold);
    snapshot.assert_invariants(1);
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    let unsold = inventory.cache_available;
    assert_code(
        t.admin.product_stock(p.id, -(unsold + 1)).await,
        ErrorCode::InvalidState,
    );
    if unsold > 0 {
        t.admin
            .product_stock(p.id, -unsold)
            .await
            .expect("all unsold units can go");
    }
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.db_available(), 0);
    snapshot.assert_invariants(1);
    let reconcile = t.admin.reconcile(p.id).await.expect("reconcile");
    assert_eq!(
        (
            reconcile.drift_before,
            reconcile.repaired,
            reconcile.consistent
        ),
        (0, false, true)
    );
    let counts: HashMap<&str, usize> = snapshot.ledger.iter().fold(HashMap::new(), |mut m, l| {
        *m.entry(l.2.as_str()).or_default() += 1;
        m
    });
    assert_eq!(
        i64::try_from(counts.get("order_placed").copied().unwrap_or(0)).expect("small"),
        sold
    );
    t.stop().await;
}
