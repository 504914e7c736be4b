//! Every validation rule answers 422 `VALIDATION_FAILED` with `details` naming the
//! field, and changes nothing.

use flash_sale_client::{ErrorCode, EventListQry, FlashSaleClient, PageQry, RawResponse};
use flash_sale_tests::{Backend, TestApp, running_event};
use serde_json::{Value, json};

crate::on_every_backend!(
    every_event_rule_names_its_field,
    every_product_rule_names_its_field,
    patches_and_stock_changes_are_validated_too,
    bad_query_parameters_are_validation_failures,
    values_over_an_upper_bound_are_told_the_bound,
);

const JSON: (&str, &str) = ("content-type", "application/json");

async fn post(client: &FlashSaleClient, path: &str, body: &Value) -> RawResponse {
    send(client, "POST", path, body).await
}

async fn send(client: &FlashSaleClient, method: &str, path: &str, body: &Value) -> RawResponse {
    client
        .raw(method, path, &[JSON], Some(body.to_string().into_bytes()))
        .await
        .expect("answer")
}

#[track_caller]
fn assert_invalid(response: &RawResponse, fields: &[&str]) {
    assert_eq!(response.status, 422, "{}", response.text);
    let body = response.error().expect("envelope");
    assert_eq!(body.code, ErrorCode::ValidationFailed);
    let mut got: Vec<&str> = body
        .details
        .as_deref()
        .expect("details")
        .iter()
        .map(|d| d.field.as_str())
        .collect();
    got.sort_unstable();
    got.dedup();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{}", response.text);
    assert!(body.details.iter().flatten().all(|d| !d.message.is_empty()));
}

fn event_body() -> Value {
    json!({
        "title": "Sale",
        "starts_at": "2030-01-01T00:00:00Z",
        "ends_at": "2030-01-02T00:00:00Z",
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().expect("object").remove(key);
    base
}

async fn every_event_rule_names_its_field(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let path = "/api/v1/admin/events";
    let cases: Vec<(Value, &[&str])> = vec![
        (without(event_body(), "title"), &["title"]),
        (with(event_body(), "title", json!("")), &["title"]),
        (with(event_body(), "title", json!("   ")), &["title"]),
        (
            with(event_body(), "title", json!("t".repeat(201))),
            &["title"],
        ),
        (with(event_body(), "title", json!(42)), &["title"]),
        (
            with(event_body(), "description", json!("d".repeat(2001))),
            &["description"],
        ),
        (without(event_body(), "starts_at"), &["starts_at"]),
        (
            with(event_body(), "starts_at", json!("next tuesday")),
            &["starts_at"],
        ),
        (
            with(event_body(), "ends_at", json!("2029-12-31T00:00:00Z")),
            &["ends_at"],
        ),
        (
            with(event_body(), "ends_at", json!("2030-01-01T00:00:00Z")),
            &["ends_at"],
        ),
        (
            with(event_body(), "strategy", json!("fastest")),
            &["strategy"],
        ),
        // Years outside 1970–9999 (RFC 3339 has four digits; they were accepted).
        (
            with(event_body(), "ends_at", json!("+10000-01-01T00:00:00Z")),
            &["ends_at"],
        ),
        (
            with(event_body(), "starts_at", json!("0000-01-01T00:00:00Z")),
            &["starts_at"],
        ),
        (
            with(event_body(), "starts_at", json!("-0001-01-01T00:00:00Z")),
            &["starts_at"],
        ),
        (
            with(event_body(), "starts_at", json!("1969-12-31T23:59:59Z")),
            &["starts_at"],
        ),
        (
            with(
                with(event_body(), "title", json!("")),
                "ends_at",
                json!("2029-01-01T00:00:00Z"),
            ),
            &["title", "ends_at"],
        ),
        (json!([1, 2]), &["body"]),
    ];
    for (body, fields) in cases {
        assert_invalid(&post(&t.admin, path, &body).await, fields);
    }
    let listed = t
        .admin
        .admin_events(&EventListQry::default())
        .await
        .expect("list");
    assert_eq!(listed.total, 0, "nothing was created");
    let ok = post(
        &t.admin,
        path,
        &with(event_body(), "title", json!("t".repeat(200))),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let offset = post(
        &t.admin,
        path,
        &with(
            with(
                event_body(),
                "starts_at",
                json!("2030-01-01T08:00:00+08:00"),
            ),
            "ends_at",
            json!("2030-01-01T00:00:01Z"),
        ),
    )
    .await;
    assert_eq!(
        offset.status, 201,
        "offsets are converted to UTC: {}",
        offset.text
    );
    t.stop().await;
}

fn product_body() -> Value {
    json!({
        "title": "Phone",
        "original_price": 1000,
        "flash_price": 500,
        "stock": 10,
    })
}

async fn every_product_rule_names_its_field(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let event = t
        .admin
        .create_event(&running_event("Sale", None))
        .await
        .expect("event");
    let path = format!("/api/v1/admin/events/{}/products", event.id);
    let cases: Vec<(Value, &[&str])> = vec![
        (without(product_body(), "title"), &["title"]),
        (with(product_body(), "title", json!("")), &["title"]),
        (
            with(product_body(), "description", json!("d".repeat(2001))),
            &["description"],
        ),
        (
            without(product_body(), "original_price"),
            &["original_price"],
        ),
        (
            with(product_body(), "original_price", json!(0)),
            &["original_price"],
        ),
        (
            with(product_body(), "original_price", json!("1000")),
            &["original_price"],
        ),
        (
            with(product_body(), "flash_price", json!(0)),
            &["flash_price"],
        ),
        (
            with(product_body(), "flash_price", json!(1001)),
            &["flash_price"],
        ),
        (
            with(product_body(), "flash_price", json!(1.5)),
            &["flash_price"],
        ),
        (without(product_body(), "stock"), &["stock"]),
        (with(product_body(), "stock", json!(0)), &["stock"]),
        (with(product_body(), "stock", json!(10_000_001)), &["stock"]),
        (
            with(product_body(), "per_user_limit", json!(0)),
            &["per_user_limit"],
        ),
        (
            with(product_body(), "per_user_limit", json!(101)),
            &["per_user_limit"],
        ),
        (
            with(product_body(), "per_user_limit", json!(-1)),
            &["per_user_limit"],
        ),
        (
            with(product_body(), "bucket_count", json!(0)),
            &["bucket_count"],
        ),
        (
            with(product_body(), "bucket_count", json!(1025)),
            &["bucket_count"],
        ),
        (
            with(
                with(product_body(), "stock", json!(0)),
                "flash_price",
                json!(2000),
            ),
            &["flash_price", "stock"],
        ),
    ];
    for (body, fields) in cases {
        assert_invalid(&post(&t.admin, &path, &body).await, fields);
    }
    let detail = t.admin.admin_event(event.id).await.expect("detail");
    assert!(detail.products.is_empty(), "nothing was created");
    let edge = with(
        with(
            with(product_body(), "stock", json!(10_000_000)),
            "per_user_limit",
            json!(100),
        ),
        "bucket_count",
        json!(1024),
    );
    let ok = post(&t.admin, &path, &with(edge, "flash_price", json!(1000))).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    t.stop().await;
}

async fn patches_and_stock_changes_are_validated_too(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let event = t
        .admin
        .create_event(&running_event("Sale", None))
        .await
        .expect("event");
    let product = t
        .admin
        .create_product(event.id, &flash_sale_tests::product("P", 5, 1))
        .await
        .expect("product");
    let event_path = format!("/api/v1/admin/events/{}", event.id);
    assert_invalid(
        &send(&t.admin, "PATCH", &event_path, &json!({"title": ""})).await,
        &["title"],
    );
    assert_invalid(
        &send(
            &t.admin,
            "PATCH",
            &event_path,
            &json!({"ends_at": "+10000-01-01T00:00:00Z"}),
        )
        .await,
        &["ends_at"],
    );
    assert_invalid(
        &send(
            &t.admin,
            "PATCH",
            &event_path,
            &json!({"starts_at": "2099-01-01T00:00:00Z"}),
        )
        .await,
        &["starts_at"],
    );
    assert_invalid(
        &send(
            &t.admin,
            "PATCH",
            &event_path,
            &json!({"ends_at": "2000-01-01T00:00:00Z"}),
        )
        .await,
        &["ends_at"],
    );
    let product_path = format!("/api/v1/admin/products/{}", product.id);
    assert_invalid(
        &send(
            &t.admin,
            "PATCH",
            &product_path,
            &json!({"flash_price": 10_001}),
        )
        .await,
        &["flash_price"],
    );
    assert_invalid(
        &send(
            &t.admin,
            "PATCH",
            &product_path,
            &json!({"original_price": 4_000}),
        )
        .await,
        &["flash_price"],
    );
    assert_invalid(
        &send(
            &t.admin,
            "PATCH",
            &product_path,
            &json!({"per_user_limit": 0}),
        )
        .await,
        &["per_user_limit"],
    );
    let stock_path = format!("/api/v1/admin/products/{}/stock", product.id);
    assert_invalid(
        &post(&t.admin, &stock_path, &json!({"delta": 0})).await,
        &["delta"],
    );
    assert_invalid(&post(&t.admin, &stock_path, &json!({})).await, &["delta"]);
    assert_invalid(
        &post(&t.admin, &stock_path, &json!({"delta": 10_000_001})).await,
        &["delta"],
    );

    let after = t.admin.admin_event(event.id).await.expect("detail");
    assert_eq!(after.event.title, "Sale", "nothing changed");
    assert_eq!(
        (after.products[0].flash_price, after.products[0].stock_total),
        (4_999, 5)
    );
    t.stop().await;
}

async fn bad_query_parameters_are_validation_failures(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let get = |path: &'static str| {
        let admin = t.admin.clone();
        async move { admin.raw("GET", path, &[], None).await.expect("answer") }
    };
    assert_invalid(&get("/api/v1/admin/events?page=0").await, &["page"]);
    assert_invalid(
        &get("/api/v1/admin/events?page_size=0").await,
        &["page_size"],
    );
    assert_invalid(
        &get("/api/v1/admin/events?page_size=101").await,
        &["page_size"],
    );
    assert_invalid(&get("/api/v1/admin/events?page=abc").await, &["page"]);
    assert_invalid(
        &get("/api/v1/admin/events?status=archived").await,
        &["status"],
    );
    assert_invalid(&get("/api/v1/events?page=-1").await, &["page"]);
    let ok = t
        .buyer("carol")
        .events(&PageQry {
            page: Some(1),
            page_size: Some(100),
        })
        .await
        .expect("bounds are inclusive");
    assert_eq!(ok.page_size, 100);
    t.stop().await;
}

/// A value over a field's upper bound is told that bound (a quantity of 1,000,001 and
/// a price over 10^12 used to answer "must be at least 1").
async fn values_over_an_upper_bound_are_told_the_bound(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let event = t
        .admin
        .create_event(&running_event("Sale", None))
        .await
        .expect("event");
    let message_of = |response: RawResponse, field: &str| {
        assert_invalid(&response, &[field]);
        let body = response.error().expect("envelope");
        body.details
            .expect("details")
            .into_iter()
            .find(|d| d.field == field)
            .expect("the field")
            .message
    };
    let products = format!("/api/v1/admin/events/{}/products", event.id);
    let too_dear = json!({
        "title": "P", "original_price": 1_000_000_000_001_i64, "flash_price": 1,
        "stock": 5, "per_user_limit": 1,
    });
    let message = message_of(post(&t.admin, &products, &too_dear).await, "original_price");
    assert!(message.contains("1000000000000"), "{message}");
    let order = json!({"product_id": 1, "quantity": 1_000_001});
    let message = message_of(
        post(&t.buyer("ann"), "/api/v1/orders", &order).await,
        "quantity",
    );
    assert!(message.contains("1000000"), "{message}");
    t.stop().await;
}
