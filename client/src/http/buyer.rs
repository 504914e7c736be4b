//! The buyer routes of [`FlashSaleClient`].

use reqwest::{Method, StatusCode};

use super::{ClientError, FlashSaleClient, IDEMPOTENCY_KEY, PlaceOrderAnswer};
use crate::event::{EventDetailDto, EventDto};
use crate::order::{OrderDto, OrderPayCmd, OrderPlaceCmd, PlacementDto};
use crate::page::{PageDto, PageQry};
use crate::product::ProductDto;

impl FlashSaleClient {
    // --- buyer ---------------------------------------------------------------------

    /// `GET /api/v1/events`.
    pub async fn events(&self, qry: &PageQry) -> Result<PageDto<EventDto>, ClientError> {
        self.get_query("/api/v1/events", qry).await
    }

    /// `GET /api/v1/events/{id}`.
    pub async fn event(&self, id: i64) -> Result<EventDetailDto, ClientError> {
        self.get(&format!("/api/v1/events/{id}")).await
    }

    /// `GET /api/v1/products/{id}`.
    pub async fn product(&self, id: i64) -> Result<ProductDto, ClientError> {
        self.get(&format!("/api/v1/products/{id}")).await
    }

    /// `POST /api/v1/orders`, with an optional `Idempotency-Key`.
    pub async fn place_order(
        &self,
        cmd: &OrderPlaceCmd,
        idempotency_key: Option<&str>,
    ) -> Result<PlaceOrderAnswer, ClientError> {
        let mut builder = self.request(Method::POST, "/api/v1/orders").json(cmd);
        if let Some(key) = idempotency_key {
            builder = builder.header(IDEMPOTENCY_KEY, key);
        }
        let (status, text) = Self::exchange(builder).await?;
        let unexpected = |text: String| ClientError::Unexpected {
            status: status.as_u16(),
            text,
        };
        match status {
            StatusCode::CREATED => serde_json::from_str(&text)
                .map(PlaceOrderAnswer::Created)
                .map_err(|_| unexpected(text)),
            StatusCode::ACCEPTED => serde_json::from_str(&text)
                .map(PlaceOrderAnswer::Accepted)
                .map_err(|_| unexpected(text)),
            _ => Err(Self::failure(status, text)),
        }
    }

    /// `GET /api/v1/placements/{id}`.
    pub async fn placement(&self, id: &str) -> Result<PlacementDto, ClientError> {
        self.get(&format!("/api/v1/placements/{id}")).await
    }

    /// `GET /api/v1/orders`.
    pub async fn orders(&self, qry: &PageQry) -> Result<PageDto<OrderDto>, ClientError> {
        self.get_query("/api/v1/orders", qry).await
    }

    /// `GET /api/v1/orders/{id}`.
    pub async fn order(&self, id: &str) -> Result<OrderDto, ClientError> {
        self.get(&format!("/api/v1/orders/{id}")).await
    }

    /// `POST /api/v1/orders/{id}/pay`.
    pub async fn pay(&self, id: &str, cmd: &OrderPayCmd) -> Result<OrderDto, ClientError> {
        self.post(&format!("/api/v1/orders/{id}/pay"), cmd).await
    }

    /// `POST /api/v1/orders/{id}/cancel`.
    pub async fn cancel(&self, id: &str) -> Result<OrderDto, ClientError> {
        self.post_empty(&format!("/api/v1/orders/{id}/cancel"))
            .await
    }
}
