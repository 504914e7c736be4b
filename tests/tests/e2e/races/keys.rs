//! Defect 8: one `Idempotency-Key`, one order — also when two instances receive the
//! same keyed request at once, and even when they disagree about the strategy (one
//! still on `sync`, the other already on `async` during a config roll-out).

use flash_sale_client::{ClientError, OrderPlaceCmd, PlaceOrderAnswer};
use flash_sale_tests::{Backend, TestApp, online_product};
use futures::StreamExt;

crate::on_redis_stacks!(two_instances_answer_one_keyed_request_with_one_order);

/// What an answer is about: the order (an async order takes its placement's id), or
/// the refusal.
fn identity(answer: &Result<PlaceOrderAnswer, ClientError>) -> String {
    match answer {
        Ok(PlaceOrderAnswer::Created(order)) => order.id.clone(),
        Ok(PlaceOrderAnswer::Accepted(placement)) => placement.id.clone(),
        Err(e) => format!("refused: {e}"),
    }
}

async fn two_instances_answer_one_keyed_request_with_one_order(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (event, p) = online_product(&t.admin, 100, 1).await;
    let other = t
        .sibling_with(|s| {
            s.ordering
                .overrides
                .insert(event.id.to_string(), "async".to_owned());
        })
        .await;
    let cmd = OrderPlaceCmd {
        product_id: p.id,
        quantity: 1,
    };
    let pairs = futures::stream::iter(0..40)
        .map(|i| {
            let name = format!("twice-{i}");
            let here = t.buyer(&name);
            let there = t.buyer_of(&other, &name);
            async move {
                let (a, b) = tokio::join!(
                    here.place_order(&cmd, Some("same")),
                    there.place_order(&cmd, Some("same"))
                );
                (name, a, b)
            }
        })
        .buffer_unordered(20)
        .collect::<Vec<_>>()
        .await;
    for (name, a, b) in &pairs {
        assert_eq!(
            identity(a),
            identity(b),
            "{name} got two different answers to one key: {a:?} / {b:?}"
        );
    }
    // Whatever was queued resolves to the same single order.
    for (name, a, _) in &pairs {
        if let Ok(PlaceOrderAnswer::Accepted(placement)) = a {
            let done = super::super::placements::resolved(&t.buyer(name), placement).await;
            assert_eq!(
                done.status,
                flash_sale_client::PlacementStatusDto::Succeeded,
                "{done:?}"
            );
        }
    }
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.held(), 40);
    snapshot.assert_invariants(1);
    other
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .expect("stops");
    t.stop().await;
}
