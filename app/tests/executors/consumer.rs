//! The async consumer: a batch per transaction, each hold settled exactly once the
//! way its placement ended; the database down for a while is waited out, down for
//! good fails the placements and gives their units back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flash_sale_app::catalogue::{CacheBackends, CatalogueService, CatalogueSettings};
use flash_sale_app::order::{ConsumeReport, PlacementConsumeCmdExe};
use flash_sale_app::policy::{OrderingConfig, OrderingPolicy};
use flash_sale_domain::gateway::{
    Fulfilled, GatewayError, MockEventGateway, MockPlacementQueue, Settlement,
};
use flash_sale_domain::order::OrderError;
use flash_sale_domain::placement::{Placement, PlacementStatus};

use crate::support::{Log, Mocks, PRODUCT, placement, product};

/// One `fail` call: placement id and error code.
type Failed = (String, String);

/// The product is found, with units left.
fn catalogue_finds_the_product(mocks: &mut Mocks) {
    mocks
        .products
        .expect_find()
        .returning(|_| Ok(Some(product(4))));
    mocks
        .products
        .expect_available()
        .returning(|_| Ok(HashMap::from([(PRODUCT, 50)])));
}

/// Placements failed go to `failed`; each answers `answer`.
fn record_failures(
    mocks: &mut Mocks,
    failed: &Log<Failed>,
    answer: fn() -> Result<bool, GatewayError>,
) {
    let failed = failed.clone();
    mocks
        .placements
        .expect_fail()
        .returning(move |id, code, _, _| {
            failed.push((id.as_str().to_owned(), code.to_owned()));
            answer()
        });
}

/// Consumes `batch` with the mocks.
async fn consume(mocks: Mocks, batch: Vec<Placement>) -> ConsumeReport {
    let ports = mocks.build();
    let catalogue = Arc::new(CatalogueService::new(
        Arc::new(MockEventGateway::new()),
        Arc::clone(&ports.products),
        Arc::clone(&ports.clock),
        Arc::new(OrderingPolicy::new(OrderingConfig::default())),
        CacheBackends {
            shared: None,
            locks: Arc::clone(&ports.locks),
            bus: None,
        },
        &CatalogueSettings::default(),
    ));
    let consumer = PlacementConsumeCmdExe::new(
        Arc::clone(&ports.placements),
        Arc::new(MockPlacementQueue::new()),
        catalogue,
        Arc::clone(&ports.stock),
        Arc::clone(&ports.clock),
        Duration::from_mins(15),
    );
    consumer.consume(batch).await
}

fn ids(batch: &[Placement]) -> Vec<String> {
    batch.iter().map(|p| p.id.as_str().to_owned()).collect()
}

#[tokio::test]
async fn a_batch_is_written_in_one_call_and_each_hold_committed_once() {
    let batch = vec![placement("ann"), placement("ben"), placement("cat")];
    let settled = Log::default();
    let mut mocks = Mocks::new().record_settlements(&settled);
    catalogue_finds_the_product(&mut mocks);
    let expected = ids(&batch);
    mocks
        .placements
        .expect_fulfil()
        .times(1)
        .withf(move |items| {
            items
                .iter()
                .map(|f| f.order.placement_id.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                == expected
                && items.iter().all(|f| f.limit.get() == 2)
        })
        .returning(|items| Ok(vec![Fulfilled::Placed; items.len()]));
    let report = consume(mocks, batch.clone()).await;
    assert_eq!(
        report,
        ConsumeReport {
            placed: 3,
            ..ConsumeReport::default()
        }
    );
    let committed: Vec<(String, Settlement)> = ids(&batch)
        .into_iter()
        .map(|id| (id, Settlement::Committed))
        .collect();
    assert_eq!(settled.calls(), committed);
}

#[tokio::test(start_paused = true)]
async fn a_batch_the_database_refuses_for_a_while_is_retried_then_written() {
    let batch = vec![placement("ann")];
    let (settled, tries) = (Log::default(), Log::default());
    let mut mocks = Mocks::new().record_settlements(&settled);
    catalogue_finds_the_product(&mut mocks);
    let count = tries.clone();
    mocks.placements.expect_fulfil().returning(move |items| {
        count.push(());
        if count.len() <= 2 {
            Err(GatewayError::Unavailable("connection refused".into()))
        } else {
            Ok(vec![Fulfilled::Placed; items.len()])
        }
    });
    // No `fail` expectation: giving up would panic the test.
    let report = consume(mocks, batch.clone()).await;
    assert_eq!(report.placed, 1);
    assert_eq!(tries.len(), 3);
    assert_eq!(
        settled.calls(),
        [(ids(&batch)[0].clone(), Settlement::Committed)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_the_database_never_takes_fails_its_placements_and_gives_their_units_back() {
    let batch = vec![placement("ann"), placement("ben")];
    let (settled, failed, tries) = (Log::default(), Log::default(), Log::default());
    let mut mocks = Mocks::new().record_settlements(&settled);
    catalogue_finds_the_product(&mut mocks);
    let count = tries.clone();
    mocks.placements.expect_fulfil().returning(move |_| {
        count.push(());
        Err(GatewayError::Unavailable("down".into()))
    });
    record_failures(&mut mocks, &failed, || Ok(true));
    let started = tokio::time::Instant::now();
    let report = consume(mocks, batch.clone()).await;
    assert!(tries.len() > 2, "retried before giving up");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(
        report,
        ConsumeReport {
            failed: 2,
            ..ConsumeReport::default()
        }
    );
    let ids = ids(&batch);
    assert_eq!(
        failed.calls(),
        ids.iter()
            .map(|id| (id.clone(), "UNAVAILABLE".to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        settled.calls(),
        ids.iter()
            .map(|id| (id.clone(), Settlement::Released))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_item_the_database_refuses_fails_alone() {
    let batch = vec![placement("ann"), placement("ben")];
    let (settled, failed) = (Log::default(), Log::default());
    let mut mocks = Mocks::new().record_settlements(&settled);
    catalogue_finds_the_product(&mut mocks);
    mocks.placements.expect_fulfil().times(1).returning(|_| {
        Ok(vec![
            Fulfilled::Placed,
            Fulfilled::Rejected(OrderError::LimitExceeded { limit: 2 }),
        ])
    });
    record_failures(&mut mocks, &failed, || Ok(true));
    let report = consume(mocks, batch.clone()).await;
    assert_eq!(
        report,
        ConsumeReport {
            placed: 1,
            failed: 1,
            ..ConsumeReport::default()
        }
    );
    let ids = ids(&batch);
    assert_eq!(
        failed.calls(),
        [(ids[1].clone(), "LIMIT_EXCEEDED".to_owned())]
    );
    // Each hold ends once, the way its placement did (in no particular order: the
    // batch's holds are settled together).
    let mut settled = settled.calls();
    settled.sort_by_key(|(id, _)| ids.iter().position(|i| i == id));
    assert_eq!(
        settled,
        [
            (ids[0].clone(), Settlement::Committed),
            (ids[1].clone(), Settlement::Released)
        ]
    );
}

#[tokio::test]
async fn a_retried_batch_whose_first_commit_went_through_settles_the_way_each_ended() {
    let batch = vec![placement("ann"), placement("ben")];
    let settled = Log::default();
    let mut mocks = Mocks::new().record_settlements(&settled);
    catalogue_finds_the_product(&mut mocks);
    mocks.placements.expect_fulfil().times(1).returning(|_| {
        Ok(vec![
            Fulfilled::AlreadyResolved { succeeded: true },
            Fulfilled::AlreadyResolved { succeeded: false },
        ])
    });
    let report = consume(mocks, batch.clone()).await;
    assert_eq!(
        report,
        ConsumeReport {
            duplicates: 2,
            ..ConsumeReport::default()
        }
    );
    let ids = ids(&batch);
    // Each hold ends once, the way its placement did (in no particular order: the
    // batch's holds are settled together).
    let mut settled = settled.calls();
    settled.sort_by_key(|(id, _)| ids.iter().position(|i| i == id));
    assert_eq!(
        settled,
        [
            (ids[0].clone(), Settlement::Committed),
            (ids[1].clone(), Settlement::Released)
        ]
    );
}

#[tokio::test]
async fn a_fail_whose_answer_was_lost_settles_the_way_the_placement_ended() {
    let batch = vec![placement("ann")];
    let (settled, failed) = (Log::default(), Log::default());
    let mut mocks = Mocks::new().record_settlements(&settled);
    catalogue_finds_the_product(&mut mocks);
    mocks
        .placements
        .expect_fulfil()
        .returning(|_| Ok(vec![Fulfilled::Rejected(OrderError::SoldOut)]));
    // `queued → failed` changes nothing: an earlier try whose answer was lost did it.
    record_failures(&mut mocks, &failed, || Ok(false));
    let resolved = batch[0].clone();
    mocks.placements.expect_find().times(1).returning(move |_| {
        let mut p = resolved.clone();
        p.status = PlacementStatus::Failed {
            code: "SOLD_OUT".into(),
            message: "sold out".into(),
        };
        Ok(Some(p))
    });
    let report = consume(mocks, batch.clone()).await;
    assert_eq!(report.duplicates, 1);
    assert_eq!(
        settled.calls(),
        [(ids(&batch)[0].clone(), Settlement::Released)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_placement_that_cannot_be_failed_now_is_left_queued_for_the_sweeper() {
    let batch = vec![placement("ann")];
    let (settled, failed) = (Log::default(), Log::default());
    let mut mocks = Mocks::new().record_settlements(&settled);
    catalogue_finds_the_product(&mut mocks);
    mocks
        .placements
        .expect_fulfil()
        .returning(|_| Err(GatewayError::Unavailable("down".into())));
    record_failures(&mut mocks, &failed, || {
        Err(GatewayError::Unavailable("down".into()))
    });
    let report = consume(mocks, batch).await;
    assert_eq!(
        report,
        ConsumeReport {
            left: 1,
            ..ConsumeReport::default()
        }
    );
    assert_eq!(failed.len(), 1);
    assert_eq!(
        settled.calls(),
        [],
        "the hold stays: the placement is still queued"
    );
}
