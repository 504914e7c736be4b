//! `/events…`, `/products/{id}`: what buyers browse.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use flash_sale_client::{EventDetailDto, EventDto, PageDto, PageQry, ProductDto};

use crate::auth::Authenticated;
use crate::error::{ApiError, JSON};
use crate::extract::{IdPath, ValidatedQuery};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(events))
        .route("/events/{id}", get(event))
        .route("/products/{id}", get(product))
}

/// Online events, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "buyer", operation_id = "list_events",
    params(PageQry),
    responses((status = 200, body = PageDto<EventDto>)),
    security(("bearer" = [])))]
pub(crate) async fn events(
    State(state): State<AppState>,
    _: Authenticated,
    ValidatedQuery(qry): ValidatedQuery<PageQry>,
) -> Result<Json<PageDto<EventDto>>, ApiError> {
    Ok(Json(state.exec.catalogue.events_page(qry).await?))
}

/// An online event with its online products.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "buyer", operation_id = "get_event",
    params(("id" = i64, Path, minimum = 1, description = "event id")),
    responses((status = 200, body = EventDetailDto), (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn event(
    State(state): State<AppState>,
    _: Authenticated,
    IdPath(id): IdPath,
) -> Result<Json<EventDetailDto>, ApiError> {
    Ok(Json(state.exec.catalogue.event_detail(id).await?))
}

/// A product whose event is online.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "buyer", operation_id = "get_product",
    params(("id" = i64, Path, minimum = 1, description = "product id")),
    responses((status = 200, body = ProductDto), (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn product(
    State(state): State<AppState>,
    _: Authenticated,
    IdPath(id): IdPath,
) -> Result<impl IntoResponse, ApiError> {
    let body = state.exec.catalogue.product_body(id).await?;
    Ok(([(header::CONTENT_TYPE, JSON)], body))
}
