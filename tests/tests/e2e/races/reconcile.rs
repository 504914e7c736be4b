//! Defect 5: a healthy sale never looks drifted. Orders between their database commit
//! and their settlement in the stock ledger are in-flight work, not drift: the
//! periodic reconcile must not suspend and reload a product that is merely busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flash_sale_adapter::auth::JwtAuth;
use flash_sale_app::Role;
use flash_sale_client::{ErrorCode, StrategyDto};
use flash_sale_tests::{Backend, TestApp, product, running_event};
use secrecy::SecretString;

crate::on_every_stack!(a_busy_sale_is_never_taken_for_drift_and_never_reloaded);

async fn a_busy_sale_is_never_taken_for_drift_and_never_reloaded(backend: Backend) {
    let (t, faults) = TestApp::spawn_faulty(backend, |_| {}).await;
    // Every settlement reaches the ledger 50 ms late: orders sit committed but not
    // yet settled long enough for any check that compares sums to see them.
    faults.delay_before("settle", Duration::from_millis(50));
    let event = t
        .admin
        .create_event(&running_event("Busy", Some(StrategyDto::Sync)))
        .await
        .expect("event");
    let p = t
        .admin
        .create_product(event.id, &product("Socks", 1_000_000, 1))
        .await
        .expect("product");
    t.admin.event_online(event.id).await.expect("online");

    // 12 s of steady ordering spans at least one round of the periodic reconcile.
    let until = Instant::now() + Duration::from_secs(12);
    let next = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (anon, next, unavailable) = (t.anon.clone(), next.clone(), unavailable.clone());
            let auth =
                JwtAuth::new(&SecretString::from(t.secret().to_owned())).expect("a valid secret");
            tokio::spawn(async move {
                let mut placed = 0;
                while Instant::now() < until {
                    // A new buyer per order, so that every request writes.
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let token = auth
                        .issue(&format!("b-{n}"), Role::Buyer, Duration::from_hours(1))
                        .expect("token");
                    let cmd = flash_sale_client::OrderPlaceCmd {
                        product_id: p.id,
                        quantity: 1,
                    };
                    match anon.with_token(token).place_order(&cmd, None).await {
                        Ok(_) => placed += 1,
                        Err(e) if e.code() == Some(ErrorCode::Unavailable) => {
                            unavailable.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                placed
            })
        })
        .collect();
    let mut placed = 0;
    for worker in workers {
        placed += worker.await.expect("worker");
    }
    assert!(placed > 0);
    assert_eq!(
        faults.calls("suspend"),
        0,
        "a healthy sale was suspended for a repair"
    );
    assert_eq!(
        unavailable.load(Ordering::Relaxed),
        0,
        "503s during a healthy sale"
    );
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    t.snapshot(p.id).await.assert_invariants(1);
    t.stop().await;
}
