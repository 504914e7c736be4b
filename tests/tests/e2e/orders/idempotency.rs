//! Idempotency keys: the same key replays the first answer, even after a restart.

use flash_sale_client::ErrorCode;
use flash_sale_tests::{Backend, TestApp, online_product, product};

use super::*;

crate::on_every_stack!(idempotency_keys_replay_the_first_answer_even_after_a_restart);

async fn idempotency_keys_replay_the_first_answer_even_after_a_restart(backend: Backend) {
    let mut t = TestApp::spawn(backend).await;
    let (_, p) = online_product(&t.admin, 10, 5).await;
    let other = t
        .admin
        .create_product(p.event_id, &product("Other", 10, 5))
        .await
        .expect("product");
    let hank = t.buyer("hank");
    let first = created(
        hank.place_order(&cmd(p.id, 2), Some("click-1"))
            .await
            .expect("order"),
    );
    let replay = created(
        hank.place_order(&cmd(p.id, 2), Some("click-1"))
            .await
            .expect("replay"),
    );
    assert_eq!(replay, first);
    assert_code(
        hank.place_order(&cmd(p.id, 1), Some("click-1")).await,
        ErrorCode::IdempotencyKeyReused,
    );
    assert_code(
        hank.place_order(&cmd(other.id, 2), Some("click-1")).await,
        ErrorCode::IdempotencyKeyReused,
    );
    let ivy_first = created(
        t.buyer("ivy")
            .place_order(&cmd(p.id, 2), Some("click-1"))
            .await
            .expect("keys are per user"),
    );
    assert_ne!(ivy_first.id, first.id);

    for bad in ["", "has space", "ümlaut", &"k".repeat(65)] {
        let response = hank
            .raw(
                "POST",
                "/api/v1/orders",
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", bad),
                ],
                Some(
                    serde_json::json!({"product_id": p.id, "quantity": 1})
                        .to_string()
                        .into_bytes(),
                ),
            )
            .await
            .expect("answer");
        if bad.is_empty() || bad.is_ascii() {
            assert_eq!(response.status, 422, "key {bad:?}: {}", response.text);
            assert_eq!(
                response.error().expect("envelope").code,
                ErrorCode::ValidationFailed
            );
        }
    }

    // Two requests with one new key at once: one order, the same answer twice.
    let one = cmd(p.id, 1);
    let (a, b) = tokio::join!(
        hank.place_order(&one, Some("click-2")),
        hank.place_order(&one, Some("click-2")),
    );
    let (a, b) = (created(a.expect("a")), created(b.expect("b")));
    assert_eq!(a.id, b.id);

    t.restart().await;
    let hank = t.buyer("hank");
    let after = created(
        hank.place_order(&cmd(p.id, 2), Some("click-1"))
            .await
            .expect("replay after restart"),
    );
    assert_eq!(after.id, first.id);
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.orders.len(), 3);
    snapshot.assert_invariants(5);
    assert!(t.admin.inventory(p.id).await.expect("inventory").consistent);
    t.stop().await;
}
