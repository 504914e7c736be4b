//! `sync` ordering: reserve, one transaction, settle the hold exactly once — and when
//! the commit's answer is lost, ask the database before answering.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flash_sale_app::AppError;
use flash_sale_app::order::{PlaceContext, PlaceOrderOutcome, SyncOrdering};
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{GatewayError, HoldKind, Reservation, ReserveRequest, Settlement};
use flash_sale_domain::order::{Order, OrderError, OrderRequest};
use flash_sale_domain::{DomainError, Strategy};

use crate::support::{Log, Mocks, PRODUCT, database_reloads, event, product, user};

fn reserved(bucket_no: u32, units: u32) -> Reservation {
    Reservation::Reserved {
        allocation: Allocation::single(bucket_no, units),
        left: 50,
    }
}

/// Places an order of `quantity` units as buyer `alice` through `sync`.
async fn place(
    mocks: Mocks,
    quantity: u32,
) -> (
    Result<PlaceOrderOutcome, AppError>,
    Arc<flash_sale_app::stock::StockService>,
) {
    let ports = mocks.build();
    let sync = SyncOrdering::new(
        Arc::clone(&ports.orders),
        Arc::clone(&ports.stock),
        Arc::clone(&ports.clock),
        Duration::from_mins(15),
    );
    let (alice, event, product) = (user("alice"), event(), product(4));
    let result = flash_sale_app::order::OrderingStrategy::place(
        &sync,
        PlaceContext {
            user: &alice,
            event: &event,
            product: &product,
            request: OrderRequest {
                product_id: PRODUCT,
                quantity,
            },
            key: None,
            strategy: Strategy::Sync,
        },
    )
    .await;
    (result, ports.stock)
}

/// The order written, kept for the mocks that answer with it later.
type Written = Arc<Mutex<Option<Order>>>;

fn write_order(mocks: &mut Mocks, answer: fn() -> Result<(), GatewayError>) -> Written {
    let written = Written::default();
    let keep = Arc::clone(&written);
    mocks
        .orders
        .expect_place()
        .times(1)
        .returning(move |order, limit| {
            assert_eq!(
                limit.get(),
                2,
                "the product's per-user limit goes with the order"
            );
            *keep.lock().expect("order") = Some(order.clone());
            answer()
        });
    written
}

fn created_id(outcome: &PlaceOrderOutcome) -> String {
    match outcome {
        PlaceOrderOutcome::Created(dto) => dto.id.clone(),
        other => panic!("expected a new order, got {other:?}"),
    }
}

#[tokio::test]
async fn an_order_is_reserved_written_and_its_hold_committed_once() {
    let settled = Log::default();
    let mut mocks = Mocks::new().loaded().record_settlements(&settled);
    mocks
        .ledger
        .expect_reserve()
        .times(1)
        .withf(|r| {
            r.product_id == PRODUCT && r.quantity == 2 && r.limit == 2 && r.kind == HoldKind::Order
        })
        .returning(|_| Ok(reserved(3, 2)));
    let written = write_order(&mut mocks, || Ok(()));
    let (result, _) = place(mocks, 2).await;
    let id = created_id(&result.expect("201"));
    let order = written.lock().expect("order").clone().expect("written");
    assert_eq!(order.id.as_str(), id);
    assert_eq!(
        order.allocation,
        Allocation::single(3, 2),
        "the order keeps the reserved bucket"
    );
    assert_eq!(settled.calls(), [(id, Settlement::Committed)]);
}

#[tokio::test]
async fn an_order_the_database_refuses_releases_its_hold_once() {
    let settled = Log::default();
    let mut mocks = Mocks::new().loaded().record_settlements(&settled);
    mocks
        .ledger
        .expect_reserve()
        .returning(|_| Ok(reserved(0, 1)));
    let written = write_order(&mut mocks, || {
        Err(GatewayError::rejected(OrderError::LimitExceeded {
            limit: 2,
        }))
    });
    let (result, stock) = place(mocks, 1).await;
    assert!(
        matches!(
            result,
            Err(AppError::Domain(DomainError::Order(
                OrderError::LimitExceeded { .. }
            )))
        ),
        "{result:?}"
    );
    let id = written.lock().expect("order").clone().expect("tried").id;
    assert_eq!(
        settled.calls(),
        [(id.as_str().to_owned(), Settlement::Released)]
    );
    assert!(!stock.is_sold_out(PRODUCT), "released units sell again");
}

#[tokio::test(start_paused = true)]
async fn a_lost_commit_answer_that_did_commit_is_answered_201() {
    let settled = Log::default();
    let mut mocks = Mocks::new().loaded().record_settlements(&settled);
    mocks
        .ledger
        .expect_reserve()
        .returning(|_| Ok(reserved(1, 1)));
    let written = write_order(&mut mocks, || {
        Err(GatewayError::Unavailable("connection reset".into()))
    });
    let found = Arc::clone(&written);
    let lookups = Log::default();
    let asked = lookups.clone();
    mocks.orders.expect_find().returning(move |id| {
        asked.push(id.clone());
        // The first look-up fails too; the second sees the committed row.
        if asked.len() == 1 {
            Err(GatewayError::Unavailable("still down".into()))
        } else {
            Ok(found.lock().expect("order").clone())
        }
    });
    let (result, _) = place(mocks, 1).await;
    let id = created_id(&result.expect("201: the order exists"));
    assert_eq!(lookups.len(), 2);
    assert!(
        lookups.calls().iter().all(|asked| asked.as_str() == id),
        "looked up by its own id"
    );
    assert_eq!(settled.calls(), [(id, Settlement::Committed)]);
}

#[tokio::test(start_paused = true)]
async fn a_lost_commit_answer_that_did_not_commit_releases_and_answers_503() {
    let settled = Log::default();
    let mut mocks = Mocks::new().loaded().record_settlements(&settled);
    mocks
        .ledger
        .expect_reserve()
        .returning(|_| Ok(reserved(1, 1)));
    let written = write_order(&mut mocks, || {
        Err(GatewayError::Unavailable("timeout".into()))
    });
    mocks.orders.expect_find().times(1).returning(|_| Ok(None));
    let (result, _) = place(mocks, 1).await;
    assert!(
        matches!(result, Err(AppError::Unavailable(_))),
        "{result:?}"
    );
    let id = written.lock().expect("order").clone().expect("tried").id;
    assert_eq!(
        settled.calls(),
        [(id.as_str().to_owned(), Settlement::Released)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_commit_nobody_can_confirm_leaves_its_hold_to_the_recovery_job() {
    let settled = Log::default();
    let mut mocks = Mocks::new().loaded().record_settlements(&settled);
    mocks
        .ledger
        .expect_reserve()
        .returning(|_| Ok(reserved(1, 1)));
    write_order(&mut mocks, || {
        Err(GatewayError::Unavailable("timeout".into()))
    });
    let lookups = Log::default();
    let asked = lookups.clone();
    mocks.orders.expect_find().returning(move |id| {
        asked.push(id.clone());
        Err(GatewayError::Unavailable("down".into()))
    });
    let (result, _) = place(mocks, 1).await;
    assert!(
        matches!(result, Err(AppError::Unavailable(_))),
        "{result:?}"
    );
    assert!(lookups.len() > 1, "the outcome is asked for more than once");
    assert_eq!(
        settled.calls(),
        [],
        "neither committed nor released: the order may exist, the recovery job decides"
    );
}

#[tokio::test]
async fn sold_out_answers_without_a_transaction_and_stops_the_next_buyers_early() {
    let mut mocks = Mocks::new().loaded();
    mocks
        .ledger
        .expect_reserve()
        .times(1)
        .returning(|_| Ok(Reservation::SoldOut { left: 0 }));
    // No `orders.place` expectation: a transaction would panic the test.
    let (result, stock) = place(mocks, 1).await;
    assert!(
        matches!(
            result,
            Err(AppError::Domain(DomainError::Order(OrderError::SoldOut)))
        ),
        "{result:?}"
    );
    assert!(stock.is_sold_out(PRODUCT));
}

#[tokio::test]
async fn a_product_not_in_the_ledger_is_loaded_from_the_database_once_then_sold() {
    let steps = Log::default();
    let settled = Log::default();
    let mut mocks = Mocks::new().free_locks(&steps).record_settlements(&settled);
    let loaded = Arc::new(Mutex::new(false));
    let is_loaded = Arc::clone(&loaded);
    mocks
        .ledger
        .expect_is_loaded()
        .returning(move |_| Ok(*is_loaded.lock().expect("flag")));
    let reserve_loaded = Arc::clone(&loaded);
    mocks.ledger.expect_reserve().returning(move |_| {
        Ok(if *reserve_loaded.lock().expect("flag") {
            reserved(2, 1)
        } else {
            Reservation::NotLoaded
        })
    });
    let loads = steps.clone();
    let set = Arc::clone(&loaded);
    mocks
        .ledger
        .expect_load()
        .times(1)
        .returning(move |_, buckets, quotas, in_flight| {
            assert_eq!(buckets.len(), 4);
            assert!(quotas.is_empty() && in_flight.is_empty());
            loads.push("load");
            *set.lock().expect("flag") = true;
            Ok(())
        });
    database_reloads(&mut mocks);
    write_order(&mut mocks, || Ok(()));
    let (result, _) = place(mocks, 1).await;
    let id = created_id(&result.expect("201"));
    assert_eq!(steps.calls(), ["lock", "load", "unlock"]);
    assert_eq!(settled.calls(), [(id, Settlement::Committed)]);
}

/// A placement the ledger refuses because the placement queue is behind: for a moment
/// this instance refuses placements by itself (orders still reach the ledger), then it
/// asks the ledger again.
#[tokio::test]
async fn a_queue_seen_behind_is_refused_here_for_a_moment_then_asked_again() {
    let behind = Reservation::Backlogged {
        lag: Duration::from_millis(5_300),
    };
    let asked = Log::default();
    let mut mocks = Mocks::new();
    let (log, answer) = (asked.clone(), behind.clone());
    mocks.ledger.expect_reserve().returning(move |r| {
        log.push(r.kind);
        Ok(match r.kind {
            HoldKind::Placement => answer.clone(),
            HoldKind::Order => reserved(0, 1),
        })
    });
    let stock = mocks.build().stock;
    let alice = user("alice");
    let request = |kind| ReserveRequest {
        product_id: PRODUCT,
        user_id: &alice,
        quantity: 1,
        limit: 2,
        token: "t",
        kind,
        placement: None,
    };
    let reserve = |kind| stock.reserve(request(kind));
    assert_eq!(reserve(HoldKind::Placement).await.expect("answer"), behind);
    assert_eq!(reserve(HoldKind::Placement).await.expect("answer"), behind);
    assert_eq!(asked.calls(), [HoldKind::Placement], "refused here");
    assert_eq!(
        reserve(HoldKind::Order).await.expect("answer"),
        reserved(0, 1)
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(reserve(HoldKind::Placement).await.expect("answer"), behind);
    assert_eq!(
        asked.calls(),
        [HoldKind::Placement, HoldKind::Order, HoldKind::Placement],
        "after the moment the ledger is asked again"
    );
}
