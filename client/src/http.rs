//! A typed HTTP client for the flash-sale API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flash_sale_client::ClientError> {
//! use flash_sale_client::{FlashSaleClient, OrderPlaceCmd};
//! let buyer = FlashSaleClient::new("http://127.0.0.1:8080").with_token("<jwt>");
//! let answer = buyer
//!     .place_order(&OrderPlaceCmd { product_id: 1, quantity: 1 }, Some("click-1"))
//!     .await?;
//! # Ok(()) }
//! ```

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ErrorBody, ErrorCode};
use crate::event::{EventCreateCmd, EventDetailDto, EventDto, EventListQry, EventPatchCmd};
use crate::order::{AdminOrderListQry, OrderDto, OrderPayCmd, OrderPlaceCmd, PlacementDto};
use crate::page::{PageDto, PageQry};
use crate::product::{
    InventoryDto, LedgerEntryDto, ProductBucketsCmd, ProductCreateCmd, ProductDto, ProductPatchCmd,
    ProductStockCmd, ReconcileDto,
};

/// The header that makes `POST /orders` idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with the error envelope.
    #[error("{status} {}: {}", body.code, body.message)]
    Api {
        /// HTTP status.
        status: u16,
        /// The envelope.
        body: ErrorBody,
    },
    /// The server answered with a status or body this client did not expect.
    #[error("unexpected answer {status}: {text}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// The body as text.
        text: String,
    },
    /// The request did not get an answer.
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
}

impl ClientError {
    /// The envelope's code, when the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Unexpected { status, .. } => Some(*status),
            Self::Transport(e) => e.status().map(|s| s.as_u16()),
        }
    }

    /// The envelope, when the server sent one.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Self::Api { body, .. } => Some(body),
            _ => None,
        }
    }
}

/// The answer to `POST /orders`: an order (sync, buckets) or a placement (async).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceOrderAnswer {
    /// 201: the order exists.
    Created(OrderDto),
    /// 202: the placement is queued; poll it.
    Accepted(PlacementDto),
}

/// An answer taken as it came, for callers that need the raw status, headers and body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub text: String,
}

impl RawResponse {
    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.text)
    }

    /// The body parsed as the error envelope.
    pub fn error(&self) -> Option<ErrorBody> {
        self.json().ok()
    }
}

/// A client of one flash-sale server, optionally carrying a bearer token.
#[derive(Debug, Clone)]
pub struct FlashSaleClient {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

impl FlashSaleClient {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_http(reqwest::Client::new(), base_url)
    }

    /// A client sharing an existing `reqwest::Client` (and its connection pool).
    pub fn with_http(http: reqwest::Client, base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            http,
            base_url,
            token: None,
        }
    }

    /// The same client, sending `Authorization: Bearer <token>`.
    #[must_use]
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn call<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, ClientError> {
        let (status, text) = Self::exchange(builder).await?;
        if status.is_success() {
            serde_json::from_str(&text).map_err(|_| ClientError::Unexpected {
                status: status.as_u16(),
                text,
            })
        } else {
            Err(Self::failure(status, text))
        }
    }

    async fn exchange(builder: RequestBuilder) -> Result<(StatusCode, String), ClientError> {
        let response = builder.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, text))
    }

    fn failure(status: StatusCode, text: String) -> ClientError {
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                body,
            },
            Err(_) => ClientError::Unexpected {
                status: status.as_u16(),
                text,
            },
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.request(Method::GET, path)).await
    }

    async fn get_query<T: DeserializeOwned, Q: Serialize>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T, ClientError> {
        self.call(self.request(Method::GET, path).query(query))
            .await
    }

    async fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(self.request(Method::POST, path).json(body)).await
    }

    async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.request(Method::POST, path)).await
    }

    async fn patch<T: DeserializeOwned, B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(self.request(Method::PATCH, path).json(body))
            .await
    }

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

    // --- operations and raw access -------------------------------------------------

    /// `GET /healthz`: `true` when it answered 200.
    pub async fn healthz(&self) -> Result<bool, ClientError> {
        let (status, _) = Self::exchange(self.request(Method::GET, "/healthz")).await?;
        Ok(status == StatusCode::OK)
    }

    /// `GET /metrics`, the Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let (status, text) = Self::exchange(self.request(Method::GET, "/metrics")).await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(Self::failure(status, text))
        }
    }

    /// Any request, answered as it came: for routes and inputs the typed methods
    /// cannot express (bad JSON, odd headers, unknown routes).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, ClientError> {
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|_| ClientError::Unexpected {
                status: 0,
                text: format!("bad method {method}"),
            })?;
        let mut builder = self.request(method, path);
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                builder = builder.header(name, value);
            }
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        Ok(RawResponse {
            status,
            headers,
            text,
        })
    }
}
