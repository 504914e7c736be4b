//! `/orders…`: the buyer's orders.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flash_sale_app::order::PlaceOrderOutcome;
use flash_sale_client::{OrderDto, OrderPayCmd, OrderPlaceCmd, PageDto, PageQry, PlacementDto};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ValidatedJson, ValidatedQuery};
use crate::state::AppState;

/// The header that makes `POST /orders` idempotent.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(place).get(list))
        .route("/orders/{id}", get(detail))
        .route("/orders/{id}/pay", post(pay))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/placements/{id}", get(placement))
        .route(
            "/placements/{id}/events",
            get(super::placement_events::placement_events),
        )
}

/// One of the caller's async placements: `queued`, then `succeeded` with the order id
/// or `failed` with the reason, within 60 s.
#[utoipa::path(get, path = "/api/v1/placements/{id}", tag = "buyer", operation_id = "get_placement",
    params(("id" = String, Path, description = "placement id")),
    responses((status = 200, body = PlacementDto), (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn placement(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<PlacementDto>, ApiError> {
    Ok(Json(state.exec.placement_get.execute(&caller, &id).await?))
}

/// Place an order: 201 with the order (sync, buckets), 202 with a placement (async).
#[utoipa::path(post, path = "/api/v1/orders", tag = "buyer", operation_id = "place_order",
    request_body = OrderPlaceCmd,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "1–64 of [A-Za-z0-9_-]; the same key and body answer the first result again")),
    responses((status = 201, body = OrderDto), (status = 202, body = PlacementDto),
              (status = 404, body = flash_sale_client::ErrorBody, description = "NOT_FOUND: no such product"),
              (status = 409, body = flash_sale_client::ErrorBody, description = "SOLD_OUT, LIMIT_EXCEEDED, NOT_ON_SALE"),
              (status = 422, body = flash_sale_client::ErrorBody, description = "VALIDATION_FAILED; IDEMPOTENCY_KEY_REUSED: the key came before with another body"),
              (status = 429, body = flash_sale_client::ErrorBody, description = "rate_limit.per_user_per_second")),
    security(("bearer" = [])))]
pub(crate) async fn place(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    ValidatedJson(cmd): ValidatedJson<OrderPlaceCmd>,
) -> Result<Response, ApiError> {
    if let Err(refused) = state.limits.check_user(caller.user_id.as_str()) {
        state.exec.attempts.record_rate_limited(cmd.product_id);
        return Err(refused);
    }
    let key = match headers.get(IDEMPOTENCY_KEY) {
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "must be 1 to 64 of A-Z, a-z, 0-9, '-' and '_'",
            )
        })?),
        None => None,
    };
    let outcome = state.exec.order_place.execute(&caller, cmd, key).await?;
    Ok(match outcome {
        PlaceOrderOutcome::Created(order) | PlaceOrderOutcome::Replayed(order) => {
            (StatusCode::CREATED, Json(order)).into_response()
        }
        PlaceOrderOutcome::Accepted(placement) => {
            (StatusCode::ACCEPTED, Json(placement)).into_response()
        }
    })
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", tag = "buyer", operation_id = "list_orders",
    params(PageQry),
    responses((status = 200, body = PageDto<OrderDto>)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ValidatedQuery(qry): ValidatedQuery<PageQry>,
) -> Result<Json<PageDto<OrderDto>>, ApiError> {
    Ok(Json(state.exec.order_list.execute(&caller, qry).await?))
}

/// One of the caller's orders.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "buyer", operation_id = "get_order",
    params(("id" = String, Path, description = "order id")),
    responses((status = 200, body = OrderDto), (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn detail(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<OrderDto>, ApiError> {
    Ok(Json(state.exec.order_get.execute(&caller, &id).await?))
}

/// Pay an order: the exact total, a unique transaction id, before it expires.
#[utoipa::path(post, path = "/api/v1/orders/{id}/pay", tag = "buyer", operation_id = "pay_order",
    params(("id" = String, Path, description = "order id")),
    request_body = OrderPayCmd,
    responses((status = 200, body = OrderDto),
              (status = 409, body = flash_sale_client::ErrorBody, description = "INVALID_STATE, DUPLICATE_TRANSACTION"),
              (status = 422, body = flash_sale_client::ErrorBody, description = "wrong amount")),
    security(("bearer" = [])))]
pub(crate) async fn pay(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    ValidatedJson(cmd): ValidatedJson<OrderPayCmd>,
) -> Result<Json<OrderDto>, ApiError> {
    Ok(Json(state.exec.order_pay.execute(&caller, &id, cmd).await?))
}

/// Cancel an unpaid order; its units and quota come back once.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "buyer", operation_id = "cancel_order",
    params(("id" = String, Path, description = "order id")),
    responses((status = 200, body = OrderDto), (status = 409, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<OrderDto>, ApiError> {
    Ok(Json(state.exec.order_cancel.execute(&caller, &id).await?))
}
