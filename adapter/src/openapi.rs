//! The OpenAPI 3 document of every route, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin_event, admin_order, admin_product, catalogue, ops, order};

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
        catalogue::events, catalogue::event, catalogue::product,
        order::place, order::list, order::detail, order::pay, order::cancel, order::placement,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(flash_sale_client::ErrorBody, flash_sale_client::ErrorCode, flash_sale_client::FieldErrorDto)),
    modifiers(&BearerAuth),
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
