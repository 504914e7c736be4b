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
use crate::order::{OrderDto, PlacementDto};

mod admin;
mod buyer;

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
