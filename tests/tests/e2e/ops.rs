//! Operations routes: liveness, readiness, metrics, the OpenAPI document.

use flash_sale_tests::{Backend, TestApp, online_product};

crate::on_every_backend!(
    health_readiness_and_metrics_answer_without_auth,
    the_openapi_document_lists_every_route,
    api_requests_over_the_per_address_rate_are_refused_but_operations_are_not,
    metric_labels_come_from_a_closed_set_whatever_clients_send,
    a_client_request_id_is_kept_only_when_short_and_plain,
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
        ("get", "/docs"),
        ("get", "/console"),
        ("get", "/api/v1/admin/stream"),
        ("get", "/api/v1/placements/{id}/events"),
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
    for i in 0..8 {
        // A client naming another address each time is still the same socket address.
        let forged = format!("203.0.113.{i}");
        let headers = [
            ("x-forwarded-for", forged.as_str()),
            ("x-real-ip", forged.as_str()),
            ("forwarded", "for=198.51.100.7"),
        ];
        statuses.push(
            buyer
                .raw("GET", "/api/v1/events", &headers, None)
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

/// The value of `key` in a Prometheus sample line's labels.
fn label<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}=\""))? + key.len() + 2;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// `/metrics` needs no token, so its labels must not grow with what clients invent:
/// invented methods used to become labels (20 requests added 340 series, and a
/// 3,000-character method was stored as one).
async fn metric_labels_come_from_a_closed_set_whatever_clients_send(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let long = "LONGMETHOD".repeat(300);
    for method in ["INVENTEDVERB", "PURGEALLX", long.as_str()] {
        for path in ["/healthz", "/api/v1/events", "/no/such/route/q7z9"] {
            let _ = t.anon.raw(method, path, &[], None).await;
        }
    }
    let _ = t.anon.raw("GET", "/no/such/route/q7z9", &[], None).await;
    let text = t.anon.metrics().await.expect("metrics");
    let methods = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE", "other",
    ];
    let samples: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("flash_sale_http_request_duration_seconds"))
        .collect();
    assert!(!samples.is_empty(), "no request metrics in\n{text}");
    for line in samples {
        let method = label(line, "method").expect("a method label");
        assert!(
            methods.contains(&method),
            "method {method:.40} in {line:.200}"
        );
        let route = label(line, "route").expect("a route label");
        assert!(
            route == "unmatched" || (route.starts_with('/') && !route.contains("q7z9")),
            "route {route:.40} in {line:.200}"
        );
        let status = label(line, "status").expect("a status label");
        assert!(
            status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()),
            "status {status:.40}"
        );
    }
    assert!(
        text.contains("method=\"other\""),
        "invented methods count as other"
    );
    assert!(
        text.contains("route=\"unmatched\""),
        "unknown routes count as unmatched"
    );
    t.stop().await;
}

/// The request id goes into every log line of its request and back to the client:
/// one that could forge log fields (`AAAA status=200 http.path=…`) or is longer than
/// 64 characters is replaced by a fresh one.
async fn a_client_request_id_is_kept_only_when_short_and_plain(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let answered = |sent: &'static str| {
        let anon = t.anon.clone();
        async move {
            let response = anon
                .raw("GET", "/healthz", &[("x-request-id", sent)], None)
                .await
                .expect("healthz");
            assert_eq!(response.status, 200);
            response
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .expect("a request id")
                .to_owned()
        }
    };
    assert_eq!(answered("trace-42_a.b").await, "trace-42_a.b");
    let long: &'static str = "x".repeat(65).leak();
    for unfit in [
        "AAAA status=200 http.path=/api/v1/admin/events",
        long,
        "a,b",
    ] {
        let id = answered(unfit).await;
        assert_ne!(id, unfit);
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{unfit:.20} was answered with {id}, not a fresh id"
        );
    }
    t.stop().await;
}

/// Logs written to a file or a pipe carry no ANSI colour codes (they did in the
/// `pretty` format, which is the default).
#[tokio::test]
#[ignore = "spawns the flash-sale binary; run scripts/test-all.sh"]
async fn logs_to_a_file_carry_no_colour_codes() {
    let mut stores = flash_sale_tests::node::NodeStores::create(Backend::Sqlite).await;
    stores.set("log.format", "pretty");
    stores.set("log.level", "info");
    let node = stores.start().await;
    let admin = stores.admin(&node);
    let (_, product) = online_product(&admin, 5, 1).await;
    stores
        .buyer(&node, "ann")
        .product(product.id)
        .await
        .expect("browse");
    let log = node.log_text();
    assert!(log.contains("INFO"), "nothing logged at INFO:\n{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in\n{log}");
}

/// A write runs in a task of its own (a hang-up must not stop it half-way); its log
/// lines must still carry the request's id ("event created" had none).
#[tokio::test]
#[ignore = "spawns the flash-sale binary; run scripts/test-all.sh"]
async fn a_write_logs_with_its_request_id() {
    let stores = flash_sale_tests::node::NodeStores::create(Backend::Sqlite).await;
    let node = stores.start().await;
    let body = serde_json::to_vec(&flash_sale_tests::running_event("Logged", None)).expect("json");
    let response = stores
        .admin(&node)
        .raw(
            "POST",
            "/api/v1/admin/events",
            &[
                ("content-type", "application/json"),
                ("x-request-id", "write-7f3a"),
            ],
            Some(body),
        )
        .await
        .expect("answer");
    assert_eq!(response.status, 201, "{}", response.text);
    let log = node.log_text();
    let created: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("event created"))
        .collect();
    assert!(!created.is_empty(), "no 'event created' line in\n{log}");
    for line in created {
        assert!(line.contains("write-7f3a"), "no request id in {line}");
    }
}

/// JSON log lines name each field once — the event's own fields and those of every
/// span around it (the current span used to be written twice, and a use case's span
/// and its log event both carried `event.id`) — and every line written during a
/// request carries its id.
#[tokio::test]
#[ignore = "spawns the flash-sale binary; run scripts/test-all.sh"]
async fn json_log_lines_name_each_field_once_and_carry_the_request_id() {
    use flash_sale_client::{OrderPayCmd, OrderPlaceCmd, PlaceOrderAnswer};

    let mut stores = flash_sale_tests::node::NodeStores::create(Backend::Sqlite).await;
    stores.set("log.format", "json");
    stores.set("log.level", "info");
    let node = stores.start().await;
    let admin = stores.admin(&node);
    let (event, product) = online_product(&admin, 20, 5).await;
    let buyer = stores.buyer(&node, "ann");
    let cmd = OrderPlaceCmd {
        product_id: product.id,
        quantity: 1,
    };
    for pay in [true, false] {
        let Ok(PlaceOrderAnswer::Created(order)) = buyer.place_order(&cmd, None).await else {
            panic!("no order");
        };
        if pay {
            let paid = OrderPayCmd {
                transaction_id: format!("tx-{}", order.id),
                amount: order.total_price,
            };
            buyer.pay(&order.id, &paid).await.expect("paid");
        } else {
            buyer.cancel(&order.id).await.expect("cancelled");
        }
    }
    admin.product_stock(product.id, 5).await.expect("stock");
    admin.product_buckets(product.id, 4).await.expect("buckets");
    admin.product_offline(product.id).await.expect("offline");
    admin.event_offline(event.id).await.expect("offline");

    let log = node.log_text();
    let mut during_requests = 0;
    for line in log.lines().filter(|line| line.starts_with('{')) {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let object = value.as_object().expect("an object");
        assert!(
            !object.contains_key("span"),
            "the current span written apart from the list of spans: {line}"
        );
        let mut names: Vec<&str> = object
            .keys()
            .map(String::as_str)
            .filter(|key| !matches!(*key, "timestamp" | "level" | "message" | "spans"))
            .collect();
        let spans = object.get("spans").and_then(|s| s.as_array());
        for span in spans.into_iter().flatten() {
            names.extend(
                span.as_object()
                    .expect("a span object")
                    .keys()
                    .map(String::as_str)
                    .filter(|key| *key != "name"),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for name in &names {
            assert!(seen.insert(*name), "{name} twice in {line}");
        }
        if spans.is_some_and(|spans| spans.iter().any(|s| s["name"] == "http")) {
            during_requests += 1;
            assert!(seen.contains("request.id"), "no request id in {line}");
        }
    }
    assert!(
        during_requests >= 5,
        "too few lines written during requests to judge:\n{log}"
    );
}
