//! `/admin/events…`: the admin's events.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use flash_sale_client::{
    EventCreateCmd, EventDetailDto, EventDto, EventListQry, EventPatchCmd, PageDto,
    ProductCreateCmd, ProductDto,
};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{IdPath, ValidatedJson, ValidatedQuery};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/events", post(create).get(list))
        .route("/admin/events/{id}", get(detail).patch(update))
        .route("/admin/events/{id}/online", post(online))
        .route("/admin/events/{id}/offline", post(offline))
        .route("/admin/events/{id}/products", post(create_product))
}

/// Create a draft event.
#[utoipa::path(post, path = "/api/v1/admin/events", tag = "admin", operation_id = "create_event",
    request_body = EventCreateCmd,
    responses((status = 201, body = EventDto), (status = 422, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    _: Admin,
    ValidatedJson(cmd): ValidatedJson<EventCreateCmd>,
) -> Result<(StatusCode, Json<EventDto>), ApiError> {
    let event = state.exec.event_create.execute(cmd).await?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// List events, newest first.
#[utoipa::path(get, path = "/api/v1/admin/events", tag = "admin", operation_id = "admin_list_events",
    params(EventListQry),
    responses((status = 200, body = PageDto<EventDto>)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
    ValidatedQuery(qry): ValidatedQuery<EventListQry>,
) -> Result<Json<PageDto<EventDto>>, ApiError> {
    Ok(Json(state.exec.event_list.execute(qry).await?))
}

/// One event with all its products.
#[utoipa::path(get, path = "/api/v1/admin/events/{id}", tag = "admin", operation_id = "admin_get_event",
    params(("id" = i64, Path, minimum = 1, description = "event id")),
    responses((status = 200, body = EventDetailDto), (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn detail(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
) -> Result<Json<EventDetailDto>, ApiError> {
    Ok(Json(state.exec.event_get.execute(id).await?))
}

/// Edit a draft or offline event.
#[utoipa::path(patch, path = "/api/v1/admin/events/{id}", tag = "admin", operation_id = "update_event",
    params(("id" = i64, Path, minimum = 1, description = "event id")),
    request_body = EventPatchCmd,
    responses((status = 200, body = EventDto), (status = 409, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn update(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
    ValidatedJson(cmd): ValidatedJson<EventPatchCmd>,
) -> Result<Json<EventDto>, ApiError> {
    Ok(Json(state.exec.event_update.execute(id, cmd).await?))
}

/// Put an event on sale (it needs a product).
#[utoipa::path(post, path = "/api/v1/admin/events/{id}/online", tag = "admin", operation_id = "event_online",
    params(("id" = i64, Path, minimum = 1, description = "event id")),
    responses((status = 200, body = EventDto), (status = 409, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn online(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
) -> Result<Json<EventDto>, ApiError> {
    Ok(Json(state.exec.event_status.online(id).await?))
}

/// Take an event off sale.
#[utoipa::path(post, path = "/api/v1/admin/events/{id}/offline", tag = "admin", operation_id = "event_offline",
    params(("id" = i64, Path, minimum = 1, description = "event id")),
    responses((status = 200, body = EventDto), (status = 409, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn offline(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
) -> Result<Json<EventDto>, ApiError> {
    Ok(Json(state.exec.event_status.offline(id).await?))
}

/// Add a product to an event.
#[utoipa::path(post, path = "/api/v1/admin/events/{id}/products", tag = "admin", operation_id = "create_product",
    params(("id" = i64, Path, minimum = 1, description = "event id")),
    request_body = ProductCreateCmd,
    responses((status = 201, body = ProductDto), (status = 422, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_product(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
    ValidatedJson(cmd): ValidatedJson<ProductCreateCmd>,
) -> Result<(StatusCode, Json<ProductDto>), ApiError> {
    let product = state.exec.product_create.execute(id, cmd).await?;
    Ok((StatusCode::CREATED, Json(product)))
}
