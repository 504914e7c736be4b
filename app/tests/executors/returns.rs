//! Returns of units — cancel and expiry, stock added and removed: announced in the
//! ledger, written to the database, finished exactly once with what the database
//! says, and left open (never guessed) when the database cannot say.

use std::time::Duration;

use flash_sale_app::AppError;
use flash_sale_domain::DomainError;
use flash_sale_domain::allocation::{Allocation, BucketPart};
use flash_sale_domain::gateway::{GatewayError, Release};
use flash_sale_domain::order::{Order, OrderId};
use flash_sale_domain::product::ProductError;
use flash_sale_domain::stock::BucketDelta;

use crate::support::{Log, Mocks, PRODUCT, now, order};

/// One `finish_return` call: token, deltas, quota (buyer, units).
type Finish = (String, Vec<BucketDelta>, Option<(String, u32)>);

/// Announcements go to `begun`, finishes to `finished`.
fn bracket(mocks: &mut Mocks, begun: &Log<String>, finished: &Log<Finish>) {
    let begun = begun.clone();
    mocks
        .ledger
        .expect_begin_return()
        .returning(move |product, token| {
            assert_eq!(product, PRODUCT);
            begun.push(token.to_owned());
            Ok(true)
        });
    let finished = finished.clone();
    mocks
        .ledger
        .expect_finish_return()
        .returning(move |_, token, deltas, quota| {
            finished.push((
                token.to_owned(),
                deltas.to_vec(),
                quota.map(|(user, units)| (user.as_str().to_owned(), units)),
            ));
            Ok(())
        });
}

/// An order split over buckets 2 and 5, as the database holds it when the cancel
/// commits (a re-arrangement may have moved it since the buyer last saw it).
fn split_order() -> Order {
    order(
        "bob",
        Allocation::from_parts(vec![
            BucketPart {
                bucket_no: 2,
                units: 1,
            },
            BucketPart {
                bucket_no: 5,
                units: 1,
            },
        ])
        .expect("valid allocation"),
    )
}

fn delta(bucket_no: u32, delta: i64) -> BucketDelta {
    BucketDelta { bucket_no, delta }
}

#[tokio::test]
async fn a_cancel_returns_its_units_to_the_buckets_the_database_names_once() {
    let (begun, finished, released) = (Log::default(), Log::default(), Log::default());
    let mut mocks = Mocks::new();
    bracket(&mut mocks, &begun, &finished);
    let keep = released.clone();
    mocks
        .orders
        .expect_release()
        .times(1)
        .returning(move |id, how, at, token| {
            assert_eq!((how, at), (Release::Cancelled, now()));
            keep.push((id.clone(), token.to_owned()));
            let mut order = split_order();
            order.id = id.clone();
            Ok(Some(order))
        });
    let id = OrderId::generate();
    let stock = mocks.build().stock;
    let order = stock
        .release_order(PRODUCT, &id, Release::Cancelled, now())
        .await
        .expect("released")
        .expect("it was pending");
    assert_eq!(order.id, id);
    let token = begun.calls().pop().expect("announced");
    assert_eq!(
        released.calls(),
        [(id, token.clone())],
        "the database write carries the announced token"
    );
    assert_eq!(
        finished.calls(),
        [(
            token,
            vec![delta(2, 1), delta(5, 1)],
            Some(("bob".to_owned(), 2))
        )],
        "each bucket of the order as the database has it, and the buyer's quota, once"
    );
}

#[tokio::test]
async fn a_cancel_of_an_order_no_longer_pending_gives_nothing_back() {
    let (begun, finished) = (Log::default(), Log::default());
    let mut mocks = Mocks::new();
    bracket(&mut mocks, &begun, &finished);
    mocks
        .orders
        .expect_release()
        .times(1)
        .returning(|_, _, _, _| Ok(None));
    let stock = mocks.build().stock;
    let result = stock
        .release_order(PRODUCT, &OrderId::generate(), Release::Expired, now())
        .await;
    assert!(matches!(result, Ok(None)), "{result:?}");
    let token = begun.calls().pop().expect("announced");
    assert_eq!(
        finished.calls(),
        [(token, vec![], None)],
        "the return is closed empty"
    );
}

#[tokio::test(start_paused = true)]
async fn a_release_whose_answer_was_lost_is_retried_with_its_token_and_returns_once() {
    let (begun, finished, tokens) = (Log::default(), Log::default(), Log::default());
    let mut mocks = Mocks::new();
    bracket(&mut mocks, &begun, &finished);
    let seen = tokens.clone();
    mocks
        .orders
        .expect_release()
        .returning(move |id, _, _, token| {
            seen.push(token.to_owned());
            if seen.len() < 3 {
                Err(GatewayError::Unavailable(
                    "the commit's answer was lost".into(),
                ))
            } else {
                let mut order = split_order();
                order.id = id.clone();
                Ok(Some(order))
            }
        });
    let stock = mocks.build().stock;
    let order = stock
        .release_order(PRODUCT, &OrderId::generate(), Release::Cancelled, now())
        .await
        .expect("released on the third try");
    assert!(order.is_some());
    let token = begun.calls().pop().expect("announced");
    assert_eq!(
        tokens.calls(),
        vec![token.clone(); 3],
        "every try carries the same token"
    );
    assert_eq!(finished.len(), 1, "finished once");
    assert_eq!(finished.calls()[0].1, [delta(2, 1), delta(5, 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_release_nobody_can_confirm_stays_announced_for_the_recovery_job() {
    let (begun, finished) = (Log::<String>::default(), Log::default());
    let mut mocks = Mocks::new();
    bracket(&mut mocks, &begun, &finished);
    let tries = Log::default();
    let count = tries.clone();
    mocks.orders.expect_release().returning(move |_, _, _, _| {
        count.push(());
        Err(GatewayError::Unavailable("down".into()))
    });
    let stock = mocks.build().stock;
    let started = tokio::time::Instant::now();
    let result = stock
        .release_order(PRODUCT, &OrderId::generate(), Release::Cancelled, now())
        .await;
    assert!(
        matches!(result, Err(AppError::Unavailable(_))),
        "{result:?}"
    );
    assert!(tries.len() > 1, "retried");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(begun.len(), 1);
    assert_eq!(
        finished.calls(),
        [],
        "not finished: nobody knows whether units came back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_return_waits_while_the_product_is_suspended_then_answers_503_untouched() {
    let mut mocks = Mocks::new();
    mocks
        .ledger
        .expect_begin_return()
        .returning(|_, _| Err(GatewayError::rejected(ProductError::Suspended)));
    // No `orders.release` expectation: writing the cancel would panic the test.
    let stock = mocks.build().stock;
    let started = tokio::time::Instant::now();
    let result = stock
        .release_order(PRODUCT, &OrderId::generate(), Release::Cancelled, now())
        .await;
    assert!(
        matches!(
            result,
            Err(AppError::Domain(DomainError::Product(
                ProductError::Suspended
            )))
        ),
        "{result:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it waited for the re-lay"
    );
}

#[tokio::test]
async fn added_units_reach_the_ledger_only_when_the_database_took_them() {
    let plan = [delta(0, 5), delta(1, 5)];
    for taken in [true, false] {
        let (begun, finished) = (Log::default(), Log::default());
        let mut mocks = Mocks::new();
        bracket(&mut mocks, &begun, &finished);
        let stock = mocks.build().stock;
        let result = stock
            .add_units(PRODUCT, &plan, async {
                if taken {
                    Ok(())
                } else {
                    Err(AppError::Unavailable("the database is down".into()))
                }
            })
            .await;
        assert_eq!(result.is_ok(), taken);
        let token = begun.calls().pop().expect("announced");
        let applied = if taken { plan.to_vec() } else { vec![] };
        assert_eq!(finished.calls(), [(token, applied, None)], "taken: {taken}");
    }
}

#[tokio::test]
async fn removed_units_go_back_to_the_ledger_when_the_database_refuses() {
    let plan = [delta(3, -4)];
    let (begun, finished) = (Log::default(), Log::default());
    let mut mocks = Mocks::new();
    bracket(&mut mocks, &begun, &finished);
    mocks
        .ledger
        .expect_take()
        .times(1)
        .withf(move |product, deltas| *product == PRODUCT && deltas == plan)
        .returning(|_, _| Ok(true));
    let stock = mocks.build().stock;
    let result = stock
        .remove_units(PRODUCT, &plan, async {
            Err::<(), _>(AppError::Unavailable("the database is down".into()))
        })
        .await;
    assert!(
        matches!(result, Err(AppError::Unavailable(_))),
        "{result:?}"
    );
    let token = begun.calls().pop().expect("announced");
    assert_eq!(
        finished.calls(),
        [(token, vec![delta(3, 4)], None)],
        "the units taken out come back"
    );
}
