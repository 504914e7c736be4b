//! `/admin/orders`, `/admin/products/{id}/inventory|reconcile`: the admin's view of
//! sales and stock.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use flash_sale_client::{AdminOrderListQry, InventoryDto, OrderDto, PageDto, ReconcileDto};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{IdPath, ValidatedQuery};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/orders", get(orders))
        .route("/admin/products/{id}/inventory", get(inventory))
        .route("/admin/products/{id}/reconcile", post(reconcile))
        .route("/admin/stream", get(super::admin_stream::stream))
}

/// Every order, newest first, optionally by product and status.
#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "admin", operation_id = "admin_list_orders",
    params(AdminOrderListQry),
    responses((status = 200, body = PageDto<OrderDto>)),
    security(("bearer" = [])))]
pub(crate) async fn orders(
    State(state): State<AppState>,
    _: Admin,
    ValidatedQuery(qry): ValidatedQuery<AdminOrderListQry>,
) -> Result<Json<PageDto<OrderDto>>, ApiError> {
    Ok(Json(state.exec.admin_orders.execute(qry).await?))
}

/// The database and stock-ledger views of a product's stock, side by side.
#[utoipa::path(get, path = "/api/v1/admin/products/{id}/inventory", tag = "admin", operation_id = "product_inventory",
    params(("id" = i64, Path, minimum = 1, description = "product id")),
    responses((status = 200, body = InventoryDto), (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn inventory(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
) -> Result<Json<InventoryDto>, ApiError> {
    Ok(Json(state.exec.inventory.execute(id).await?))
}

/// Compare the stock ledger with the database and repair the ledger from it.
#[utoipa::path(post, path = "/api/v1/admin/products/{id}/reconcile", tag = "admin", operation_id = "product_reconcile",
    params(("id" = i64, Path, minimum = 1, description = "product id")),
    responses((status = 200, body = ReconcileDto), (status = 503, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn reconcile(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
) -> Result<Json<ReconcileDto>, ApiError> {
    Ok(Json(state.exec.reconcile.execute(id).await?))
}
