//! The admin routes of [`FlashSaleClient`].

use super::{ClientError, FlashSaleClient};
use crate::event::{EventCreateCmd, EventDetailDto, EventDto, EventListQry, EventPatchCmd};
use crate::order::{AdminOrderListQry, OrderDto};
use crate::page::{PageDto, PageQry};
use crate::product::{
    InventoryDto, LedgerEntryDto, ProductBucketsCmd, ProductCreateCmd, ProductDto, ProductPatchCmd,
    ProductStockCmd, ReconcileDto,
};

impl FlashSaleClient {
    // --- admin: events -------------------------------------------------------------

    /// `POST /api/v1/admin/events`.
    pub async fn create_event(&self, cmd: &EventCreateCmd) -> Result<EventDto, ClientError> {
        self.post("/api/v1/admin/events", cmd).await
    }

    /// `GET /api/v1/admin/events`.
    pub async fn admin_events(&self, qry: &EventListQry) -> Result<PageDto<EventDto>, ClientError> {
        self.get_query("/api/v1/admin/events", qry).await
    }

    /// `GET /api/v1/admin/events/{id}`.
    pub async fn admin_event(&self, id: i64) -> Result<EventDetailDto, ClientError> {
        self.get(&format!("/api/v1/admin/events/{id}")).await
    }

    /// `PATCH /api/v1/admin/events/{id}`.
    pub async fn patch_event(&self, id: i64, cmd: &EventPatchCmd) -> Result<EventDto, ClientError> {
        self.patch(&format!("/api/v1/admin/events/{id}"), cmd).await
    }

    /// `POST /api/v1/admin/events/{id}/online`.
    pub async fn event_online(&self, id: i64) -> Result<EventDto, ClientError> {
        self.post_empty(&format!("/api/v1/admin/events/{id}/online"))
            .await
    }

    /// `POST /api/v1/admin/events/{id}/offline`.
    pub async fn event_offline(&self, id: i64) -> Result<EventDto, ClientError> {
        self.post_empty(&format!("/api/v1/admin/events/{id}/offline"))
            .await
    }

    // --- admin: products -----------------------------------------------------------

    /// `POST /api/v1/admin/events/{id}/products`.
    pub async fn create_product(
        &self,
        event_id: i64,
        cmd: &ProductCreateCmd,
    ) -> Result<ProductDto, ClientError> {
        self.post(&format!("/api/v1/admin/events/{event_id}/products"), cmd)
            .await
    }

    /// `PATCH /api/v1/admin/products/{id}`.
    pub async fn patch_product(
        &self,
        id: i64,
        cmd: &ProductPatchCmd,
    ) -> Result<ProductDto, ClientError> {
        self.patch(&format!("/api/v1/admin/products/{id}"), cmd)
            .await
    }

    /// `POST /api/v1/admin/products/{id}/online`.
    pub async fn product_online(&self, id: i64) -> Result<ProductDto, ClientError> {
        self.post_empty(&format!("/api/v1/admin/products/{id}/online"))
            .await
    }

    /// `POST /api/v1/admin/products/{id}/offline`.
    pub async fn product_offline(&self, id: i64) -> Result<ProductDto, ClientError> {
        self.post_empty(&format!("/api/v1/admin/products/{id}/offline"))
            .await
    }

    /// `POST /api/v1/admin/products/{id}/stock`.
    pub async fn product_stock(&self, id: i64, delta: i64) -> Result<ProductDto, ClientError> {
        self.post(
            &format!("/api/v1/admin/products/{id}/stock"),
            &ProductStockCmd { delta },
        )
        .await
    }

    /// `POST /api/v1/admin/products/{id}/buckets`.
    pub async fn product_buckets(&self, id: i64, count: u32) -> Result<ProductDto, ClientError> {
        self.post(
            &format!("/api/v1/admin/products/{id}/buckets"),
            &ProductBucketsCmd { count },
        )
        .await
    }

    /// `GET /api/v1/admin/products/{id}/inventory`.
    pub async fn inventory(&self, id: i64) -> Result<InventoryDto, ClientError> {
        self.get(&format!("/api/v1/admin/products/{id}/inventory"))
            .await
    }

    /// `GET /api/v1/admin/products/{id}/ledger`.
    pub async fn ledger(
        &self,
        id: i64,
        qry: &PageQry,
    ) -> Result<PageDto<LedgerEntryDto>, ClientError> {
        self.get_query(&format!("/api/v1/admin/products/{id}/ledger"), qry)
            .await
    }

    /// `POST /api/v1/admin/products/{id}/reconcile`.
    pub async fn reconcile(&self, id: i64) -> Result<ReconcileDto, ClientError> {
        self.post_empty(&format!("/api/v1/admin/products/{id}/reconcile"))
            .await
    }

    /// `GET /api/v1/admin/orders`.
    pub async fn admin_orders(
        &self,
        qry: &AdminOrderListQry,
    ) -> Result<PageDto<OrderDto>, ClientError> {
        self.get_query("/api/v1/admin/orders", qry).await
    }
}
