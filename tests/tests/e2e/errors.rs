//! The error envelope for every failure: 400, 401, 403, 404, 405, 413, 414, 431.

use flash_sale_app::Role;
use flash_sale_client::{ErrorBody, ErrorCode, FlashSaleClient, RawResponse};
use flash_sale_tests::{Backend, TestApp, online_product, running_event};

crate::on_every_backend!(
    malformed_bodies_and_wrong_content_types_are_bad_requests,
    missing_or_bad_tokens_are_unauthenticated_and_buyers_are_forbidden_admin_routes,
    unknown_ids_routes_and_methods_get_the_envelope,
    bodies_over_64_kib_are_too_large,
    a_body_that_names_a_key_twice_is_refused_and_orders_nothing,
    tokens_good_for_longer_than_auth_max_token_lifetime_are_refused,
    targets_and_headers_past_the_limits_are_refused_in_the_envelope,
);

#[track_caller]
fn assert_envelope(response: &RawResponse, status: u16, code: ErrorCode) -> ErrorBody {
    assert_eq!(response.status, status, "{}", response.text);
    let content_type = response
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: ErrorBody = response.json().expect("the error envelope");
    assert_eq!(body.code, code, "{}", response.text);
    if status == 401 {
        // RFC 6750: a 401 says which scheme the client should use.
        assert_eq!(
            response
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{:?}",
            response.headers
        );
    }
    assert!(!body.message.is_empty());
    assert!(!response.text.contains("sqlx") && !response.text.contains("panicked"));
    body
}

async fn malformed_bodies_and_wrong_content_types_are_bad_requests(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let path = "/api/v1/admin/events";
    for (content_type, body) in [
        ("application/json", "{\"title\": "),
        ("application/json", "not json"),
        ("application/json", ""),
        ("text/plain", "{\"title\":\"x\"}"),
        ("application/x-www-form-urlencoded", "title=x"),
    ] {
        let response = t
            .admin
            .raw(
                "POST",
                path,
                &[("content-type", content_type)],
                Some(body.as_bytes().to_vec()),
            )
            .await
            .expect("answer");
        assert_envelope(&response, 400, ErrorCode::BadRequest);
    }
    let no_type = t
        .admin
        .raw("POST", path, &[], Some(b"{}".to_vec()))
        .await
        .expect("answer");
    assert_envelope(&no_type, 400, ErrorCode::BadRequest);
    t.stop().await;
}

async fn missing_or_bad_tokens_are_unauthenticated_and_buyers_are_forbidden_admin_routes(
    backend: Backend,
) {
    let t = TestApp::spawn(backend).await;
    let get = async |client: &FlashSaleClient, path: &str| {
        client.raw("GET", path, &[], None).await.expect("answer")
    };

    assert_envelope(
        &get(&t.anon, "/api/v1/events").await,
        401,
        ErrorCode::Unauthenticated,
    );
    assert_envelope(
        &get(&t.anon, "/api/v1/admin/events").await,
        401,
        ErrorCode::Unauthenticated,
    );

    let now = chrono::Utc::now().timestamp();
    let sign = |alg: &str, secret: &str, claims: serde_json::Value| forge(alg, secret, &claims);
    let claims = |exp: i64| serde_json::json!({"sub": "mallory", "role": "admin", "exp": exp});
    let bad_tokens = [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        sign("HS256", "wrong-secret", claims(now + 600)),
        sign("HS256", t.secret(), claims(now - 60)),
        // Not before ten minutes from now.
        sign(
            "HS256",
            t.secret(),
            serde_json::json!({"sub": "mallory", "role": "admin", "exp": now + 1200, "nbf": now + 600}),
        ),
        sign("HS512", t.secret(), claims(now + 600)),
        sign("none", "", claims(now + 600)),
        sign(
            "HS256",
            t.secret(),
            serde_json::json!({"sub": "mallory", "role": "admin"}),
        ),
        sign(
            "HS256",
            t.secret(),
            serde_json::json!({"role": "admin", "exp": now + 600}),
        ),
        sign(
            "HS256",
            t.secret(),
            serde_json::json!({"sub": "x".repeat(65), "role": "admin", "exp": now + 600}),
        ),
        sign(
            "HS256",
            t.secret(),
            serde_json::json!({"sub": "m", "role": "root", "exp": now + 600}),
        ),
    ];
    for token in &bad_tokens {
        let client = t.anon.with_token(token.clone());
        assert_envelope(
            &get(&client, "/api/v1/admin/events").await,
            401,
            ErrorCode::Unauthenticated,
        );
        assert_envelope(
            &get(&client, "/api/v1/events").await,
            401,
            ErrorCode::Unauthenticated,
        );
    }
    let basic = t
        .anon
        .raw(
            "GET",
            "/api/v1/events",
            &[("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")],
            None,
        )
        .await
        .expect("answer");
    assert_envelope(&basic, 401, ErrorCode::Unauthenticated);
    // A good token anywhere but the Authorization header counts for nothing.
    let good = t.token("admin-1", Role::Admin);
    let in_query = format!("/api/v1/admin/events?access_token={good}&token={good}");
    assert_envelope(
        &get(&t.anon, &in_query).await,
        401,
        ErrorCode::Unauthenticated,
    );
    let cookie = format!("token={good}; access_token={good}; jwt={good}");
    let in_cookie = t
        .anon
        .raw(
            "GET",
            "/api/v1/admin/events",
            &[("cookie", cookie.as_str())],
            None,
        )
        .await
        .expect("answer");
    assert_envelope(&in_cookie, 401, ErrorCode::Unauthenticated);
    let leeway = t
        .anon
        .with_token(sign("HS256", t.secret(), claims(now - 2)));
    assert_eq!(
        get(&leeway, "/api/v1/admin/events").await.status,
        200,
        "5 s of leeway"
    );

    let buyer = t.buyer("bob");
    assert_envelope(
        &get(&buyer, "/api/v1/admin/events").await,
        403,
        ErrorCode::Forbidden,
    );
    let create = buyer
        .create_event(&running_event("Nope", None))
        .await
        .expect_err("forbidden");
    assert_eq!(
        (create.status(), create.code()),
        (Some(403), Some(ErrorCode::Forbidden))
    );
    assert_eq!(get(&buyer, "/api/v1/events").await.status, 200);
    let admin_as_buyer = t.anon.with_token(t.token("boss", Role::Admin));
    assert_eq!(
        get(&admin_as_buyer, "/api/v1/events").await.status,
        200,
        "admins may browse"
    );
    t.stop().await;
}

/// A JWT signed with HMAC (`HS256`/`HS512`, real signatures) or unsigned (`none`).
fn forge(alg: &str, secret: &str, claims: &serde_json::Value) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let algorithm = match alg {
        "HS256" => Algorithm::HS256,
        "HS512" => Algorithm::HS512,
        _ => {
            let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
            let payload = base64url(claims.to_string().as_bytes());
            return format!("{header}.{payload}.");
        }
    };
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).expect("a valid secret"),
    )
    .expect("signs")
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

async fn unknown_ids_routes_and_methods_get_the_envelope(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let raw = async |method: &str, path: &str| {
        t.admin.raw(method, path, &[], None).await.expect("answer")
    };
    assert_envelope(
        &raw("GET", "/api/v1/admin/events/424242").await,
        404,
        ErrorCode::NotFound,
    );
    assert_envelope(
        &raw("GET", "/api/v1/admin/events/not-a-number").await,
        404,
        ErrorCode::NotFound,
    );
    assert_envelope(
        &raw("POST", "/api/v1/admin/events/424242/online").await,
        404,
        ErrorCode::NotFound,
    );
    assert_envelope(
        &raw("POST", "/api/v1/admin/products/424242/offline").await,
        404,
        ErrorCode::NotFound,
    );
    assert_envelope(
        &raw("GET", "/api/v1/admin/products/424242/ledger").await,
        404,
        ErrorCode::NotFound,
    );
    assert_envelope(
        &raw("GET", "/api/v1/no/such/route").await,
        404,
        ErrorCode::NotFound,
    );
    assert_envelope(&raw("GET", "/nowhere").await, 404, ErrorCode::NotFound);
    let create = t
        .admin
        .create_product(424_242, &flash_sale_tests::product("P", 1, 1))
        .await
        .expect_err("no event");
    assert_eq!(create.code(), Some(ErrorCode::NotFound));
    let wrong_method = raw("DELETE", "/api/v1/admin/events").await;
    assert_envelope(&wrong_method, 405, ErrorCode::MethodNotAllowed);
    assert!(wrong_method.headers.contains_key("allow"));
    assert!(
        wrong_method.headers.contains_key("x-request-id"),
        "every answer carries a request id"
    );
    t.stop().await;
}

async fn bodies_over_64_kib_are_too_large(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let padding = "x".repeat(64 * 1024);
    let body = serde_json::json!({"title": "big", "description": padding}).to_string();
    let response = t
        .admin
        .raw(
            "POST",
            "/api/v1/admin/events",
            &[("content-type", "application/json")],
            Some(body.into_bytes()),
        )
        .await
        .expect("answer");
    assert_envelope(&response, 413, ErrorCode::PayloadTooLarge);
    let listed = t
        .admin
        .admin_events(&flash_sale_client::EventListQry::default())
        .await
        .expect("list");
    assert_eq!(listed.total, 0);
    t.stop().await;
}

/// `{"quantity":1,"quantity":3}` used to order 3 (the last key won); whoever reads the
/// body another way (a proxy, an audit log) would see another order than the one
/// placed. A key named twice, at any depth, is a bad request and changes nothing.
async fn a_body_that_names_a_key_twice_is_refused_and_orders_nothing(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, product) = online_product(&t.admin, 10, 5).await;
    let buyer = t.buyer("ann");
    for body in [
        format!(
            r#"{{"product_id":{},"quantity":1,"quantity":3}}"#,
            product.id
        ),
        format!(
            r#"{{"product_id":{0},"product_id":{0},"quantity":1}}"#,
            product.id
        ),
    ] {
        let response = buyer
            .raw(
                "POST",
                "/api/v1/orders",
                &[("content-type", "application/json")],
                Some(body.into_bytes()),
            )
            .await
            .expect("answer");
        let error = assert_envelope(&response, 400, ErrorCode::BadRequest);
        assert!(error.message.contains("twice"), "{}", error.message);
    }
    let snapshot = t.snapshot(product.id).await;
    assert!(snapshot.orders.is_empty(), "{:?}", snapshot.orders);
    assert_eq!(snapshot.buckets.iter().map(|b| b.2).sum::<i64>(), 10);
    t.stop().await;
}

/// `auth.max_token_lifetime` bounds how far ahead a token's `exp` may lie: a leaked
/// token must not stay good for years. (Tokens without an upper bound were accepted.)
async fn tokens_good_for_longer_than_auth_max_token_lifetime_are_refused(backend: Backend) {
    use std::time::Duration;

    use flash_sale::config::HumanDuration;
    use flash_sale_adapter::auth::JwtAuth;
    use secrecy::SecretString;

    let t = TestApp::spawn_with(backend, |s| {
        s.auth.max_token_lifetime = HumanDuration(Duration::from_mins(30));
    })
    .await;
    let keys = JwtAuth::new(&SecretString::from(t.secret().to_owned())).expect("keys");
    let path = "/api/v1/orders";
    for (ttl, status) in [
        (Duration::from_mins(20), 200),
        (Duration::from_hours(1), 401),
        (Duration::from_hours(24 * 365), 401),
    ] {
        let token = keys.issue("ann", Role::Buyer, ttl).expect("token");
        let response = t
            .anon
            .with_token(token)
            .raw("GET", path, &[], None)
            .await
            .expect("answer");
        if status == 200 {
            assert_eq!(response.status, 200, "{}", response.text);
        } else {
            assert_envelope(&response, 401, ErrorCode::Unauthenticated);
        }
    }
    t.stop().await;
}

/// A request target over 8 KiB and headers over 16 KiB (or more than 64 of them) are
/// refused with 414 and 431 in the envelope; they were answered by the HTTP layer
/// with an empty body.
async fn targets_and_headers_past_the_limits_are_refused_in_the_envelope(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let long = format!("/api/v1/events?page=1&x={}", "a".repeat(9 * 1024));
    let response = t.anon.raw("GET", &long, &[], None).await.expect("answer");
    assert_envelope(&response, 414, ErrorCode::BadRequest);
    assert!(response.headers.contains_key("x-request-id"));

    // `count` headers `x-<i>: value`, sent to /healthz.
    let healthz_with = async |count: usize, value: &str| {
        let names: Vec<String> = (0..count).map(|i| format!("x-{i}")).collect();
        let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), value)).collect();
        t.anon
            .raw("GET", "/healthz", &headers, None)
            .await
            .expect("answer")
    };
    let kib = "v".repeat(1024);
    assert_envelope(&healthz_with(20, &kib).await, 431, ErrorCode::BadRequest);
    assert_envelope(&healthz_with(70, "1").await, 431, ErrorCode::BadRequest);
    // Just under the limits is served.
    let response = healthz_with(10, &kib).await;
    assert_eq!(response.status, 200, "{}", response.text);
    t.stop().await;
}
