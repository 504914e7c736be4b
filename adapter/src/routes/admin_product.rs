//! `/admin/products/{id}…`: the admin's products and their stock.

use axum::extract::State;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use flash_sale_client::{
    LedgerEntryDto, PageDto, PageQry, ProductBucketsCmd, ProductDto, ProductPatchCmd,
    ProductStockCmd,
};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{IdPath, ValidatedJson, ValidatedQuery};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/products/{id}", patch(update))
        .route("/admin/products/{id}/online", post(online))
        .route("/admin/products/{id}/offline", post(offline))
        .route("/admin/products/{id}/stock", post(stock))
        .route("/admin/products/{id}/buckets", post(buckets))
        .route("/admin/products/{id}/ledger", get(ledger))
}

/// Edit a product; new orders see the change.
#[utoipa::path(patch, path = "/api/v1/admin/products/{id}", tag = "admin", operation_id = "update_product",
    params(("id" = i64, Path, minimum = 1, description = "product id")),
    request_body = ProductPatchCmd,
    responses((status = 200, body = ProductDto), (status = 422, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn update(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
    ValidatedJson(cmd): ValidatedJson<ProductPatchCmd>,
) -> Result<Json<ProductDto>, ApiError> {
    Ok(Json(state.exec.product_update.execute(id, cmd).await?))
}

/// Put a product on sale.
#[utoipa::path(post, path = "/api/v1/admin/products/{id}/online", tag = "admin", operation_id = "product_online",
    params(("id" = i64, Path, minimum = 1, description = "product id")),
    responses((status = 200, body = ProductDto), (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn online(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
) -> Result<Json<ProductDto>, ApiError> {
    Ok(Json(state.exec.product_status.online(id).await?))
}

/// Take a product off sale.
#[utoipa::path(post, path = "/api/v1/admin/products/{id}/offline", tag = "admin", operation_id = "product_offline",
    params(("id" = i64, Path, minimum = 1, description = "product id")),
    responses((status = 200, body = ProductDto), (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn offline(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
) -> Result<Json<ProductDto>, ApiError> {
    Ok(Json(state.exec.product_status.offline(id).await?))
}

/// Add units, or remove unsold ones.
#[utoipa::path(post, path = "/api/v1/admin/products/{id}/stock", tag = "admin", operation_id = "product_stock",
    params(("id" = i64, Path, minimum = 1, description = "product id")),
    request_body = ProductStockCmd,
    responses((status = 200, body = ProductDto), (status = 409, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn stock(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
    ValidatedJson(cmd): ValidatedJson<ProductStockCmd>,
) -> Result<Json<ProductDto>, ApiError> {
    Ok(Json(state.exec.product_stock.execute(id, cmd.delta).await?))
}

/// Re-arrange the product's buckets live: suspend, consolidate the unsold units,
/// re-split them over `count` buckets, resume. Sold units stay where they are.
#[utoipa::path(post, path = "/api/v1/admin/products/{id}/buckets", tag = "admin", operation_id = "product_buckets",
    params(("id" = i64, Path, minimum = 1, description = "product id")),
    request_body = ProductBucketsCmd,
    responses((status = 200, body = ProductDto), (status = 422, body = flash_sale_client::ErrorBody),
              (status = 503, body = flash_sale_client::ErrorBody, description = "operations in flight did not finish; retry")),
    security(("bearer" = [])))]
pub(crate) async fn buckets(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
    ValidatedJson(cmd): ValidatedJson<ProductBucketsCmd>,
) -> Result<Json<ProductDto>, ApiError> {
    Ok(Json(
        state.exec.product_buckets.execute(id, cmd.count).await?,
    ))
}

/// The product's inventory ledger, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/products/{id}/ledger", tag = "admin", operation_id = "product_ledger",
    params(("id" = i64, Path, minimum = 1, description = "product id"), PageQry),
    responses((status = 200, body = PageDto<LedgerEntryDto>)),
    security(("bearer" = [])))]
pub(crate) async fn ledger(
    State(state): State<AppState>,
    _: Admin,
    IdPath(id): IdPath,
    ValidatedQuery(qry): ValidatedQuery<PageQry>,
) -> Result<Json<PageDto<LedgerEntryDto>>, ApiError> {
    Ok(Json(state.exec.ledger.execute(id, qry).await?))
}
