//! The console's feeds: pushed placement results for buyers, the admin stream, and
//! the pages served by the binary (`/docs`, `/console`).

use std::time::Duration;

use flash_sale_app::Role;
use flash_sale_client::{PlaceOrderAnswer, StrategyDto};
use flash_sale_tests::sse::{SseEnd, SseEvent, SseStream};
use flash_sale_tests::{Backend, TestApp, one_unit, sale};
use serde_json::Value;

mod every_stack {
    use super::*;
    crate::on_every_stack!(
        placement_events_push_the_outcome_to_the_owner_only,
        the_admin_stream_is_for_admins_and_follows_the_sale,
    );
}

mod with_redis {
    use super::*;
    crate::on_redis_stacks!(two_instances_stream_the_same_figures);
}

/// The product's entry in a `snapshot` event.
fn pulse(event: &SseEvent, product_id: i64) -> Option<Value> {
    if event.name != "snapshot" {
        return None;
    }
    event.json()["products"]
        .as_array()?
        .iter()
        .find(|p| p["product_id"] == product_id)
        .cloned()
}

/// The sum of one outcome over the pulse's seconds.
fn total(pulse: &Value, outcome: &str) -> u64 {
    pulse["per_second"]
        .as_array()
        .expect("per_second")
        .iter()
        .map(|s| s[outcome].as_u64().expect("a count"))
        .sum()
}

async fn placement_events_push_the_outcome_to_the_owner_only(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, product) = sale(&t.admin, Some(StrategyDto::Async), 5, 1, None).await;
    let ann = t.buyer("ann");
    let PlaceOrderAnswer::Accepted(placement) = ann
        .place_order(&one_unit(product.id), None)
        .await
        .expect("accepted")
    else {
        panic!("an async sale answers 202");
    };
    let url = format!(
        "{}/api/v1/placements/{}/events",
        t.anon.base_url(),
        placement.id
    );
    let bob = t.token("bob", Role::Buyer);
    let refused = SseStream::open(&url, Some(&bob)).await.err();
    assert_eq!(refused.map(|(status, _)| status), Some(404), "not bob's");
    let refused = SseStream::open(&url, None).await.err();
    assert_eq!(refused.map(|(status, _)| status), Some(401));

    let ann_token = t.token("ann", Role::Buyer);
    let mut events = SseStream::open(&url, Some(&ann_token))
        .await
        .expect("the owner's stream");
    let kind = events.response().headers()["content-type"]
        .to_str()
        .expect("ascii");
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    let mut last = events.next(Duration::from_secs(10)).await.expect("now");
    assert!(
        ["queued", "succeeded"].contains(&last.name.as_str()),
        "{last:?}"
    );
    while last.name == "queued" {
        assert_eq!(last.json()["status"], "queued");
        last = events
            .next(Duration::from_mins(1))
            .await
            .expect("the outcome is pushed");
    }
    assert_eq!(last.name, "succeeded", "{last:?}");
    let resolved = last.json();
    assert_eq!(resolved["id"], placement.id.as_str());
    let order_id = resolved["order_id"].as_str().expect("order_id");
    let made = ann.order(order_id).await.expect("the order is ann's");
    assert_eq!(made.product_id, product.id);
    assert_eq!(
        events.next(Duration::from_secs(5)).await,
        Err(SseEnd::Closed),
        "closed once resolved"
    );

    // A stream opened after it resolved: the outcome, then the end.
    let mut again = SseStream::open(&url, Some(&ann_token))
        .await
        .expect("again");
    let only = again.next(Duration::from_secs(5)).await.expect("outcome");
    assert_eq!(only.name, "succeeded");
    assert_eq!(only.json()["order_id"], order_id);
    assert_eq!(
        again.next(Duration::from_secs(5)).await,
        Err(SseEnd::Closed)
    );
    let unknown = format!("{}/api/v1/placements/nope/events", t.anon.base_url());
    let refused = SseStream::open(&unknown, Some(&ann_token)).await.err();
    assert_eq!(refused.map(|(status, _)| status), Some(404));
    t.stop().await;
}

async fn the_admin_stream_is_for_admins_and_follows_the_sale(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let url = format!("{}/api/v1/admin/stream", t.anon.base_url());
    let buyer = t.token("ann", Role::Buyer);
    let refused = SseStream::open(&url, Some(&buyer)).await.err();
    assert_eq!(refused.map(|(status, _)| status), Some(403), "buyers");
    let refused = SseStream::open(&url, None).await.err();
    assert_eq!(refused.map(|(status, _)| status), Some(401));

    let (_, product) = sale(&t.admin, None, 5, 1, Some(2)).await;
    let admin = t.token("admin-9", Role::Admin);
    let mut stream = SseStream::open(&url, Some(&admin)).await.expect("admin");
    let first = stream
        .until(Duration::from_secs(10), |e| pulse(e, product.id).is_some())
        .await;
    let full = pulse(&first, product.id).expect("the product");
    assert_eq!(full["inventory"]["stock_total"], 5);
    assert_eq!(full["inventory"]["cache_available"], 5);
    assert_eq!(
        full["inventory"]["buckets"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(full["effective_strategy"], "sync");

    // Five sold, one over the limit, two sold out, one not on sale.
    for buyer in ["a", "b", "c", "d", "e"] {
        let answer = t
            .buyer(buyer)
            .place_order(&one_unit(product.id), None)
            .await;
        assert!(
            matches!(answer, Ok(PlaceOrderAnswer::Created(_))),
            "{answer:?}"
        );
        if buyer == "a" {
            t.buyer("a")
                .place_order(&one_unit(product.id), None)
                .await
                .expect_err("over the limit");
        }
    }
    for buyer in ["f", "g"] {
        t.buyer(buyer)
            .place_order(&one_unit(product.id), None)
            .await
            .expect_err("sold out");
    }
    t.admin.product_offline(product.id).await.expect("offline");
    t.buyer("h")
        .place_order(&one_unit(product.id), None)
        .await
        .expect_err("not on sale");
    let api = t.admin.inventory(product.id).await.expect("inventory");
    assert_eq!(api.cache_available, 0);
    let seen = stream
        .until(Duration::from_secs(10), |e| {
            pulse(e, product.id).is_some_and(|p| {
                p["inventory"]["cache_available"] == api.cache_available
                    && total(&p, "sold") == 5
                    && total(&p, "limit_exceeded") == 1
                    && total(&p, "sold_out") == 2
                    && total(&p, "not_on_sale") == 1
                    && p["status"] == "offline"
            })
        })
        .await;
    let last = pulse(&seen, product.id).expect("the product");
    assert_eq!(last["inventory"]["held"], 5);
    assert_eq!(last["inventory"]["consistent"], true);
    assert_eq!(total(&last, "unavailable"), 0);
    t.stop().await;
}

/// With Redis, every instance shows the same figures: stock from the shared ledger
/// and database, attempts added up over the instances.
async fn two_instances_stream_the_same_figures(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let sibling = t.sibling().await;
    let (_, product) = sale(&t.admin, None, 20, 1, None).await;
    for buyer in ["a", "b", "c"] {
        t.buyer(buyer)
            .place_order(&one_unit(product.id), None)
            .await
            .expect("sold here");
    }
    for buyer in ["d", "e"] {
        t.buyer_of(&sibling, buyer)
            .place_order(&one_unit(product.id), None)
            .await
            .expect("sold there");
    }
    let admin = t.token("admin-9", Role::Admin);
    let mut figures = Vec::new();
    for base in [t.anon.base_url().to_owned(), sibling.base_url()] {
        let url = format!("{base}/api/v1/admin/stream");
        let mut stream = SseStream::open(&url, Some(&admin)).await.expect("admin");
        let seen = stream
            .until(Duration::from_secs(10), |e| {
                pulse(e, product.id).is_some_and(|p| total(&p, "sold") == 5)
            })
            .await;
        let pulse = pulse(&seen, product.id).expect("the product");
        figures.push((pulse["inventory"].clone(), total(&pulse, "sold")));
    }
    assert_eq!(figures[0], figures[1], "the same on both instances");
    assert_eq!(figures[0].0["cache_available"], 15);
    sibling
        .shutdown(Duration::from_secs(5))
        .await
        .expect("sibling stops");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_outlives_the_idle_timeout_and_ends_at_shutdown() {
    let t = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.server.idle_timeout = flash_sale::config::HumanDuration(Duration::from_secs(1));
    })
    .await;
    sale(&t.admin, None, 5, 1, None).await;
    let url = format!("{}/api/v1/admin/stream", t.anon.base_url());
    let admin = t.token("admin-9", Role::Admin);
    let mut stream = SseStream::open(&url, Some(&admin)).await.expect("admin");
    // Snapshots keep coming for three idle timeouts: an answer being sent is not an
    // idle connection.
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_millis(3500) {
        let event = stream.next(Duration::from_secs(2)).await;
        assert!(event.is_ok(), "the stream was cut: {event:?}");
    }
    // A shutdown ends the stream rather than waiting for it.
    let began = tokio::time::Instant::now();
    let (took, end) = tokio::join!(
        async {
            t.stop().await;
            began.elapsed()
        },
        async {
            loop {
                if let Err(end) = stream.next(Duration::from_secs(5)).await {
                    break end;
                }
            }
        }
    );
    assert_eq!(end, SseEnd::Closed);
    assert!(
        took < Duration::from_secs(4),
        "the shutdown waited {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_and_console_are_served_with_everything_they_load() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let get = async |path: &str| {
        t.anon
            .raw("GET", path, &[], None)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let kind = |r: &flash_sale_client::RawResponse| {
        r.headers["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let docs = get("/docs").await;
    assert_eq!(docs.status, 200);
    assert!(kind(&docs).starts_with("text/html"), "{}", kind(&docs));
    assert!(docs.text.contains("swagger-ui"), "{}", docs.text);
    assert!(
        docs.text.contains("\"/docs/swagger-ui-bundle.js\""),
        "{}",
        docs.text
    );
    let init = get("/docs/swagger-initializer.js").await;
    assert_eq!(init.status, 200);
    assert!(init.text.contains("\"/openapi.json\""), "{}", init.text);
    for (file, wanted) in [
        ("/docs/swagger-ui-bundle.js", "javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        let loaded = get(file).await;
        assert_eq!(loaded.status, 200, "{file}");
        assert!(kind(&loaded).contains(wanted), "{file}: {}", kind(&loaded));
        assert!(loaded.text.len() > 10_000, "{file} is the real thing");
    }
    let missing = get("/docs/nothing.js").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("NOT_FOUND"), "{}", missing.text);

    let console = get("/console").await;
    assert_eq!(console.status, 200);
    assert!(kind(&console).starts_with("text/html"));
    let policy = console.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(console.text.contains("/console/console.js"));
    for file in ["/console", "/console/console.js", "/console/console.css"] {
        let loaded = get(file).await;
        assert_eq!(loaded.status, 200, "{file}");
        assert!(
            !loaded.text.contains("http://") && !loaded.text.contains("https://"),
            "{file} loads nothing from elsewhere"
        );
    }
    assert_eq!(get("/console/elsewhere.js").await.status, 404);
    t.stop().await;
}
