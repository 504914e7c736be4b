//! Operations routes: liveness, readiness, metrics, the OpenAPI document.

use flash_sale_tests::{Backend, TestApp, online_product};

crate::on_every_backend!(
    health_readiness_and_metrics_answer_without_auth,
    the_openapi_document_lists_every_route,
    api_requests_over_the_per_address_rate_are_refused_but_operations_are_not,
);

async fn health_readiness_and_metrics_answer_without_auth(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    assert!(t.anon.healthz().await.expect("healthz"));
    let ready = t
        .anon
        .raw("GET", "/readyz", &[], None)
        .await
        .expect("readyz");
    assert_eq!(ready.status, 200, "{}", ready.text);
    let ready: serde_json::Value = ready.json().expect("json");
    assert_eq!(ready["checks"]["database"], "ok");

    let (_, product) = online_product(&t.admin, 5, 1).await;
    t.buyer("ann").product(product.id).await.expect("browse");
    t.buyer("ann")
        .product(product.id)
        .await
        .expect("browse again");
    t.buyer("ann").product(987_654).await.expect_err("unknown");
    let text = t.anon.metrics().await.expect("metrics");
    for needle in [
        "flash_sale_http_request_duration_seconds_bucket",
        "flash_sale_cache_lookups_total{layer=\"db\"}",
        "flash_sale_cache_lookups_total{layer=\"local\"}",
        "route=\"/api/v1/products/{id}\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    t.stop().await;
}

async fn the_openapi_document_lists_every_route(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let doc = t
        .anon
        .raw("GET", "/openapi.json", &[], None)
        .await
        .expect("openapi");
    assert_eq!(doc.status, 200);
    let doc: serde_json::Value = doc.json().expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let expected = [
        ("post", "/api/v1/admin/events"),
        ("get", "/api/v1/admin/events"),
        ("get", "/api/v1/admin/events/{id}"),
        ("patch", "/api/v1/admin/events/{id}"),
        ("post", "/api/v1/admin/events/{id}/online"),
        ("post", "/api/v1/admin/events/{id}/offline"),
        ("post", "/api/v1/admin/events/{id}/products"),
        ("patch", "/api/v1/admin/products/{id}"),
        ("post", "/api/v1/admin/products/{id}/online"),
        ("post", "/api/v1/admin/products/{id}/offline"),
        ("post", "/api/v1/admin/products/{id}/stock"),
        ("post", "/api/v1/admin/products/{id}/buckets"),
        ("get", "/api/v1/admin/products/{id}/ledger"),
        ("get", "/api/v1/admin/products/{id}/inventory"),
        ("post", "/api/v1/admin/products/{id}/reconcile"),
        ("get", "/api/v1/admin/orders"),
        ("post", "/api/v1/orders"),
        ("get", "/api/v1/orders"),
        ("get", "/api/v1/orders/{id}"),
        ("post", "/api/v1/orders/{id}/pay"),
        ("post", "/api/v1/orders/{id}/cancel"),
        ("get", "/api/v1/placements/{id}"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/events/{id}"),
        ("get", "/api/v1/products/{id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];
    for (method, path) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|ops| ops.as_object().map_or(0, serde_json::Map::len))
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "every documented route is expected here"
    );
    t.stop().await;
}

async fn api_requests_over_the_per_address_rate_are_refused_but_operations_are_not(
    backend: Backend,
) {
    let t = TestApp::spawn_with(backend, |s| s.rate_limit.per_ip_per_second = 3).await;
    let buyer = t.buyer("pam");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            buyer
                .raw("GET", "/api/v1/events", &[], None)
                .await
                .expect("answer")
                .status,
        );
    }
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 4,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    for _ in 0..8 {
        assert!(
            t.anon.healthz().await.expect("healthz"),
            "operations routes are not limited"
        );
    }
    t.stop().await;
}
