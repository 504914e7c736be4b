//! Strategy switching by configuration: `ordering.*` in the config file is re-read
//! while the service runs, and a live event changes strategy mid-sale — its stock
//! re-laid between one bucket and `ordering.bucket_count` — without breaking an
//! invariant.

use std::collections::HashSet;
use std::time::Duration;

use flash_sale_client::{ErrorCode, FlashSaleClient, OrderDto, PlaceOrderAnswer, StrategyDto};
use flash_sale_tests::{Backend, TestApp, product, running_event};
use futures::StreamExt;

crate::on_every_stack!(switching_the_strategy_by_config_mid_sale_keeps_every_invariant);

/// One order, whatever the strategy: a 201 order, or a 202 placement followed to its
/// order; 503s and transport errors are retried with the same key.
pub(crate) async fn place_any(
    buyer: &FlashSaleClient,
    product_id: i64,
) -> Result<OrderDto, ErrorCode> {
    match flash_sale_tests::place_until_answered(buyer, product_id, 1, Some("switch")).await? {
        PlaceOrderAnswer::Created(order) => Ok(order),
        PlaceOrderAnswer::Accepted(p) => super::placements::outcome(buyer, &p).await,
    }
}

async fn switching_the_strategy_by_config_mid_sale_keeps_every_invariant(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("flash-sale.toml");
    let write = |strategy: &str| {
        std::fs::write(
            &file,
            format!("[ordering]\ndefault_strategy = \"{strategy}\"\n"),
        )
        .expect("config written");
    };
    write("sync");
    let source = file.clone();
    let t = TestApp::spawn_with(backend, move |s| s.source = Some(source)).await;
    let event = t
        .admin
        .create_event(&running_event("Switch", None))
        .await
        .expect("event");
    let p = t
        .admin
        .create_product(event.id, &product("Lamp", 250, 1))
        .await
        .expect("product");
    t.admin.event_online(event.id).await.expect("online");

    // 300 buyers over about three seconds, while the default strategy goes
    // sync → buckets → async → sync through the file.
    let buying = futures::stream::iter(0..300_u64)
        .map(|i| {
            let buyer = t.buyer(&format!("s-{i}"));
            async move {
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                place_any(&buyer, p.id).await
            }
        })
        .buffer_unordered(300)
        .collect::<Vec<_>>();
    // Switching to `buckets` re-lays the product over `ordering.bucket_count` (8)
    // buckets; back to `sync` (or `async`), over one.
    let switching = async {
        for (strategy, dto, buckets) in [
            ("buckets", StrategyDto::Buckets, 8),
            ("async", StrategyDto::Async, 1),
            ("sync", StrategyDto::Sync, 1),
        ] {
            tokio::time::sleep(Duration::from_millis(600)).await;
            write(strategy);
            let started = std::time::Instant::now();
            loop {
                let detail = t.admin.admin_event(event.id).await.expect("event");
                let laid = detail.products.first().map(|p| p.bucket_count);
                if detail.event.effective_strategy == dto && laid == Some(buckets) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "{strategy} with {buckets} buckets not in force within 5 s of the file change"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (results, ()) = tokio::join!(buying, switching);

    let mut strategies = HashSet::new();
    let mut sold = 0;
    for result in &results {
        match result {
            Ok(order) => {
                sold += 1;
                strategies.insert(order.strategy);
            }
            Err(code) => assert_eq!(*code, ErrorCode::SoldOut),
        }
    }
    assert_eq!(sold, 250, "every unit sold once, whatever the strategy");
    assert!(
        strategies.len() >= 2,
        "the sale ran under several strategies: {strategies:?}"
    );
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (250, 0));
    snapshot.assert_invariants(1);
    let started = std::time::Instant::now();
    let inventory = loop {
        let inventory = t.admin.inventory(p.id).await.expect("inventory");
        if inventory.in_flight == 0 || started.elapsed() > Duration::from_secs(5) {
            break inventory;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(inventory.consistent, "{inventory:?}");
    assert_eq!(snapshot.buckets.len(), 1, "back on one bucket under sync");
    assert!(snapshot.ledger.iter().any(|l| l.2 == "rebalanced"));
    t.stop().await;
}
