//! The OpenAPI 3 document of every route, generated from the handlers' annotations.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    admin_event, admin_order, admin_product, admin_stream, catalogue, ops, order, pages,
    placement_events,
};

/// The whole API.
#[derive(OpenApi)]
#[openapi(
    info(title = "flash-sale", description = "A flash-sale (seckill) backend: admin, buyer and operations routes."),
    paths(
        admin_event::create, admin_event::list, admin_event::detail, admin_event::update,
        admin_event::online, admin_event::offline, admin_event::create_product,
        admin_product::update, admin_product::online, admin_product::offline,
        admin_product::stock, admin_product::buckets, admin_product::ledger,
        admin_order::orders, admin_order::inventory, admin_order::reconcile,
        admin_stream::stream,
        catalogue::events, catalogue::event, catalogue::product,
        order::place, order::list, order::detail, order::pay, order::cancel, order::placement,
        placement_events::placement_events,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi, pages::docs, pages::console,
    ),
    components(schemas(flash_sale_client::ErrorBody, flash_sale_client::ErrorCode, flash_sale_client::FieldErrorDto)),
    modifiers(&BearerAuth, &EveryFailure),
    tags(
        (name = "admin", description = "Events, products and stock (role admin)"),
        (name = "buyer", description = "Browsing and ordering"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Adds to every operation each failure it can answer (in the envelope) that its own
/// annotation does not name already, from what the operation is: under `/api/v1`
/// (rate limit, dependencies), authenticated, admin only, with a body, with query or
/// header parameters, with an id in its path. The HTTP layer's own refusals (body,
/// target and header limits, a bug) go on every operation.
struct EveryFailure;

impl EveryFailure {
    fn failures(path: &str, op: &Operation) -> Vec<(u16, &'static str)> {
        let params = op.parameters.iter().flatten().filter_map(|p| match p {
            RefOr::T(p) => Some(&p.parameter_in),
            RefOr::Ref(_) => None,
        });
        let query_or_header = params
            .clone()
            .any(|at| matches!(at, ParameterIn::Query | ParameterIn::Header));
        let in_path = path.contains('{');
        let body = op.request_body.is_some();
        let api = path.starts_with("/api/");
        let mut failures = vec![
            (413, "PAYLOAD_TOO_LARGE: a body over 64 KiB"),
            (414, "BAD_REQUEST: a request target over 8 KiB"),
            (431, "BAD_REQUEST: headers over 16 KiB or more than 64"),
            (500, "INTERNAL: a bug, logged with the request id"),
        ];
        if body {
            failures.push((400, "BAD_REQUEST: a body that is not JSON, names a key twice, is not sent as application/json or does not arrive within the time budget"));
        }
        if body || query_or_header {
            failures.push((422, "VALIDATION_FAILED: fields or parameters missing, mistyped, out of range or inconsistent (with details)"));
        }
        if op.security.is_some() {
            failures.push((401, "UNAUTHENTICATED: no, a malformed, a badly signed, a not-yet-valid or an expired token"));
        }
        if path.starts_with("/api/v1/admin/") {
            failures.push((403, "FORBIDDEN: the token's role is not admin"));
        }
        if in_path {
            failures.push((404, "NOT_FOUND: no such id, or not visible to this caller"));
        }
        if api {
            failures.push((
                429,
                "RATE_LIMITED: rate_limit.per_ip_per_second; Retry-After is set",
            ));
            failures.push((503, "UNAVAILABLE: a dependency is down or too slow (past server.request_timeout); nothing was consumed"));
        }
        failures
    }
}

impl Modify for EveryFailure {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                for (status, description) in Self::failures(path, op) {
                    let envelope = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build();
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(description)
                                    .content("application/json", envelope)
                                    .build(),
                            )
                        });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;
    use utoipa::OpenApi;

    use super::ApiDoc;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).expect("serialises")
    }

    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                found.push((method.to_uppercase(), path.clone(), op));
            }
        }
        found
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut seen = HashSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(seen.insert(id.to_owned()), "{id} twice ({method} {path})");
        }
    }

    #[test]
    fn every_operation_names_the_failures_it_can_answer() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            let responses = op["responses"].as_object().expect("responses");
            let has = |status: &str| responses.contains_key(status);
            let mut expected = vec!["413", "414", "431", "500"];
            if path.starts_with("/api/") {
                expected.extend(["401", "429", "503"]);
            }
            if path.starts_with("/api/v1/admin/") {
                expected.push("403");
            }
            if path.contains('{') {
                expected.push("404");
            }
            if op.get("requestBody").is_some() {
                expected.extend(["400", "422"]);
            }
            if op["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["in"] == "query" || p["in"] == "header"))
            {
                expected.push("422");
            }
            for status in expected {
                assert!(has(status), "{method} {path} does not name {status}");
                if status != "200" {
                    let schema = &responses[status]["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_error_codes_are_those_of_the_contract() {
        let doc = document();
        let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(!codes.contains(&"UNKNOWN"), "{codes:?}");
        for code in [
            "BAD_REQUEST",
            "UNAUTHENTICATED",
            "FORBIDDEN",
            "NOT_FOUND",
            "SOLD_OUT",
            "LIMIT_EXCEEDED",
            "NOT_ON_SALE",
            "INVALID_STATE",
            "DUPLICATE_TRANSACTION",
            "METHOD_NOT_ALLOWED",
            "PAYLOAD_TOO_LARGE",
            "VALIDATION_FAILED",
            "IDEMPOTENCY_KEY_REUSED",
            "RATE_LIMITED",
            "UNAVAILABLE",
            "INTERNAL",
        ] {
            assert!(codes.contains(&code), "{code} missing from {codes:?}");
        }
    }

    #[test]
    fn bounds_ids_and_keys_are_as_the_service_checks_them() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let quantity = &schemas["OrderPlaceCmd"]["properties"]["quantity"];
        assert_eq!(quantity["minimum"], 1, "{quantity}");
        assert_eq!(quantity["maximum"], 1_000_000, "{quantity}");
        let title = &schemas["EventCreateCmd"]["properties"]["title"];
        assert_eq!(title["minLength"], 1, "{title}");
        assert_eq!(title["maxLength"], 200, "{title}");
        let stock = &schemas["ProductCreateCmd"]["properties"]["stock"];
        assert_eq!(stock["maximum"], 10_000_000, "{stock}");
        for (method, path, op) in operations(&doc) {
            for param in op["parameters"].as_array().into_iter().flatten() {
                let schema = &param["schema"];
                match param["name"].as_str() {
                    Some("page_size") => {
                        assert_eq!(schema["minimum"], 1, "{method} {path} {param}");
                        assert_eq!(schema["maximum"], 100, "{method} {path} {param}");
                    }
                    // Any u32 page is served: an int32 format would call 2^31 invalid.
                    Some("page") => {
                        assert_eq!(schema["minimum"], 1, "{method} {path} {param}");
                        assert_eq!(schema["maximum"], 4_294_967_295_u64, "{param}");
                        assert_ne!(schema["format"], "int32", "{method} {path} {param}");
                    }
                    Some("id") if schema["type"] == "integer" => {
                        assert_eq!(schema["minimum"], 1, "{method} {path} {param}");
                    }
                    Some("Idempotency-Key") => {
                        assert_eq!(schema["pattern"], "^[A-Za-z0-9_-]{1,64}$", "{param}");
                    }
                    _ => {}
                }
            }
        }
    }
}
