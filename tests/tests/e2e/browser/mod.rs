//! The console and the API docs in a real headless browser (Debian's `chromium`,
//! driven through `chromedriver` over WebDriver): sign in, watch a product sell live,
//! act through a form, read the error envelope; `/docs` lists every operation with
//! nothing loaded from elsewhere.

mod driver;

use std::time::Duration;

use fantoccini::Locator;
use flash_sale_app::Role;
use flash_sale_client::{OrderPlaceCmd, PlaceOrderAnswer};
use flash_sale_tests::{Backend, TestApp, one_unit, sale};
use tokio::time::Instant;

use self::driver::{Driver, artifacts, click, sign_in, submit_form, text_becomes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver; run scripts/test-all.sh"]
async fn the_console_signs_in_watches_a_sale_live_and_acts() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let (event, product) = sale(&t.admin, None, 30, 1, Some(4)).await;
    let (_driver, browser) = Driver::start().await;
    browser
        .goto(&format!("{}/console", t.anon.base_url()))
        .await
        .expect("open the console");

    // A wrong token and a buyer's token show the API's error envelope.
    sign_in(&browser, "not-a-token").await;
    let refused = text_becomes(&browser, "#sign-in-error", Duration::from_secs(5), |t| {
        t.contains("UNAUTHENTICATED")
    })
    .await;
    assert!(refused.is_ok(), "{refused:?}");
    sign_in(&browser, &t.token("ann", Role::Buyer)).await;
    let refused = text_becomes(&browser, "#sign-in-error", Duration::from_secs(5), |t| {
        t.starts_with("403 FORBIDDEN")
    })
    .await;
    assert!(refused.is_ok(), "{refused:?}");
    let stored: Option<String> = browser
        .execute(
            "return sessionStorage.getItem('flash-sale.console.token')",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    assert_eq!(stored, None, "a refused token is not kept");

    // The admin signs in, finds the event and opens the product's live view.
    sign_in(&browser, &t.token("admin-9", Role::Admin)).await;
    let row = format!("#events-table tr[data-id='{}'] button", event.id);
    click(&browser, &row).await;
    click(&browser, "#products-table tbody tr button").await;
    let full = text_becomes(&browser, "#live-available", Duration::from_secs(10), |t| {
        t == "30"
    })
    .await;
    assert!(full.is_ok(), "the live view shows the stock: {full:?}");
    let url = browser.current_url().await.expect("url");
    assert_eq!(url.query(), None, "no token in the URL: {url}");

    // Orders through the API: the displayed stock falls to the API's value within 2 s.
    for n in 0..12 {
        let answer = t
            .buyer(&format!("b{n}"))
            .place_order(&one_unit(product.id), None)
            .await;
        assert!(
            matches!(answer, Ok(PlaceOrderAnswer::Created(_))),
            "{answer:?}"
        );
    }
    let api = t.admin.inventory(product.id).await.expect("inventory");
    assert_eq!(api.cache_available, 18);
    let shown = text_becomes(&browser, "#live-available", Duration::from_secs(2), |t| {
        t == api.cache_available.to_string()
    })
    .await;
    assert!(
        shown.is_ok(),
        "after 2 s the console showed {shown:?}, the API 18"
    );
    let bars = browser
        .find_all(Locator::Css("#live-buckets .bucket"))
        .await
        .expect("bars");
    assert_eq!(bars.len(), 4, "a bar per bucket");
    let sold = text_becomes(&browser, "#live-held", Duration::from_secs(2), |t| {
        t == "12"
    })
    .await;
    assert!(sold.is_ok(), "{sold:?}");
    tokio::time::sleep(Duration::from_millis(600)).await; // one more frame of the chart
    let png = browser.screenshot().await.expect("screenshot");
    let shot = artifacts().join("console-live.png");
    std::fs::write(&shot, &png).expect("write the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG at {}", shot.display());

    // An admin action through its form, seen in the API; a refused one shows the envelope.
    click(&browser, "#nav-actions").await;
    let done = submit_form(
        &browser,
        "stock",
        &[("id", &product.id.to_string()), ("delta", "5")],
        |t| t.contains("\"stock_total\": 35"),
    )
    .await;
    assert!(done.is_ok(), "{done:?}");
    let after = t.admin.inventory(product.id).await.expect("inventory");
    assert_eq!(after.stock_total, 35, "the form's action reached the API");
    let refused = submit_form(
        &browser,
        "stock",
        &[("id", &product.id.to_string()), ("delta", "-1000")],
        |t| t.starts_with("409 INVALID_STATE"),
    )
    .await;
    assert!(refused.is_ok(), "{refused:?}");
    assert_eq!(
        t.admin
            .inventory(product.id)
            .await
            .expect("inventory")
            .stock_total,
        35,
        "a refused action changes nothing"
    );
    browser.close().await.expect("close the browser");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver; run scripts/test-all.sh"]
async fn the_docs_list_every_operation_with_nothing_loaded_from_elsewhere() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let doc: serde_json::Value = t
        .anon
        .raw("GET", "/openapi.json", &[], None)
        .await
        .expect("openapi")
        .json()
        .expect("json");
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            operations.push((method.clone(), path.clone(), op["operationId"].clone()));
        }
    }
    let (_driver, browser) = Driver::start().await;
    let base = t.anon.base_url().to_owned();
    browser
        .goto(&format!("{base}/docs"))
        .await
        .expect("open the docs");
    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = browser
            .find_all(Locator::Css(".opblock"))
            .await
            .map_or(0, |found| found.len());
        if shown >= operations.len() || Instant::now() >= deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(shown, operations.len(), "one block per operation");
    let page = browser.source().await.expect("page");
    for (method, path, id) in &operations {
        let id = id.as_str().expect("operationId");
        assert!(page.contains(id), "{method} {path} ({id}) is not listed");
    }
    let loaded = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .expect("resources");
    let loaded: Vec<String> = serde_json::from_value(loaded).expect("names");
    assert!(!loaded.is_empty());
    for name in &loaded {
        assert!(
            name.starts_with(&base) || name.starts_with("data:"),
            "loaded from elsewhere: {name}"
        );
    }
    browser.close().await.expect("close the browser");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's chromium and chromium-driver; run scripts/test-all.sh"]
async fn a_sale_is_made_and_put_online_through_the_console_forms() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let (_driver, browser) = Driver::start().await;
    browser
        .goto(&format!("{}/console", t.anon.base_url()))
        .await
        .expect("open the console");
    sign_in(&browser, &t.token("admin-9", Role::Admin)).await;
    click(&browser, "#nav-actions").await;
    let now = chrono::Utc::now();
    let minute = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let (starts, ends) = (
        minute(now - chrono::Duration::minutes(2)),
        minute(now + chrono::Duration::days(1)),
    );
    let made = submit_form(
        &browser,
        "create-event",
        &[
            ("title", "Console sale"),
            ("starts_at", &starts),
            ("ends_at", &ends),
            ("strategy", "buckets"),
        ],
        |t| t.contains("\"status\": \"draft\""),
    )
    .await
    .expect("the event is made");
    let event: serde_json::Value = serde_json::from_str(&made).expect("the answer");
    let event_id = event["id"].as_i64().expect("id").to_string();
    assert_eq!(event["strategy"], "buckets");

    // A refused product shows the envelope with the field that was wrong.
    let refused = submit_form(
        &browser,
        "create-product",
        &[
            ("event_id", &event_id),
            ("title", "Lamp"),
            ("original_price", "1000"),
            ("flash_price", "2000"),
            ("stock", "40"),
            ("per_user_limit", "2"),
            ("bucket_count", "4"),
        ],
        |t| t.starts_with("422 VALIDATION_FAILED"),
    )
    .await
    .expect("refused");
    assert!(refused.contains("flash_price"), "{refused}");
    let made = submit_form(&browser, "create-product", &[("flash_price", "500")], |t| {
        t.contains("\"bucket_count\": 4")
    })
    .await
    .expect("the product is made");
    let product: serde_json::Value = serde_json::from_str(&made).expect("the answer");
    let product_id = product["id"].as_i64().expect("id");
    submit_form(
        &browser,
        "event-status",
        &[("id", &event_id), ("to", "online")],
        // The event's answer (the product's, shown before, is online too).
        |t| t.contains("\"effective_strategy\"") && t.contains("\"status\": \"online\""),
    )
    .await
    .expect("online");

    let seen = t
        .admin
        .admin_event(event["id"].as_i64().expect("id"))
        .await
        .expect("the event");
    assert_eq!(seen.event.status, flash_sale_client::EventStatusDto::Online);
    assert_eq!(seen.products.len(), 1);
    assert_eq!(
        (seen.products[0].stock_total, seen.products[0].flash_price),
        (40, 500)
    );
    let answer = t
        .buyer("ann")
        .place_order(
            &OrderPlaceCmd {
                product_id,
                quantity: 2,
            },
            None,
        )
        .await;
    assert!(
        matches!(answer, Ok(PlaceOrderAnswer::Created(_))),
        "{answer:?}"
    );
    browser.close().await.expect("close the browser");
    t.stop().await;
}
