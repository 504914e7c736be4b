//! [`ApiError`]: every failure as an HTTP status plus the error envelope.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flash_sale_app::AppError;
use flash_sale_app::error::Chain;
use flash_sale_app::error::{ErrorKind, error_code};
use flash_sale_client::{ErrorBody, ErrorCode, FieldErrorDto};

/// The content type of a body serialised ahead of the request.
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code`'s status and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(code.status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: ErrorBody::new(code, message),
            retry_after: None,
        }
    }

    /// `VALIDATION_FAILED` with `details`.
    pub fn validation(details: Vec<FieldErrorDto>) -> Self {
        let mut error = Self::new(ErrorCode::ValidationFailed, "the request is not valid");
        error.body.details = Some(details);
        error
    }

    /// `VALIDATION_FAILED` about one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldErrorDto {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// `NOT_FOUND`.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// Sets `Retry-After` (seconds).
    #[must_use]
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The envelope.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Domain(e) => {
                let code = match e.kind() {
                    ErrorKind::Validation => {
                        let details = e
                            .violations()
                            .iter()
                            .map(|v| FieldErrorDto {
                                field: v.field.clone(),
                                message: v.message.clone(),
                            })
                            .collect();
                        return Self::validation(details);
                    }
                    ErrorKind::Unavailable => {
                        return Self::new(ErrorCode::Unavailable, e.to_string())
                            .with_retry_after(1);
                    }
                    kind => error_code(kind),
                };
                Self::new(code, e.to_string())
            }
            AppError::NotFound(what) => Self::not_found(what),
            AppError::Unavailable(why) => {
                tracing::warn!(error = %Chain(&why), "dependency unavailable");
                Self::new(
                    ErrorCode::Unavailable,
                    "a dependency is unavailable; nothing was changed; try again",
                )
                .with_retry_after(1)
            }
            AppError::Internal(e) => {
                tracing::error!(error = %Chain(e.as_ref()), "internal error");
                Self::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

/// The sold-out envelope, serialised once: a sold-out storm answers it thousands of
/// times a second, always the same bytes (kept from the first one answered).
static SOLD_OUT: OnceLock<(ErrorBody, Bytes)> = OnceLock::new();

/// The pre-built answer when `body` is the sold-out envelope.
fn prebuilt(body: &ErrorBody) -> Option<Bytes> {
    if body.code != ErrorCode::SoldOut {
        return None;
    }
    let (known, bytes) = SOLD_OUT.get_or_init(|| {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        (body.clone(), Bytes::from(bytes))
    });
    (known == body && !bytes.is_empty()).then(|| bytes.clone())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match prebuilt(&self.body) {
            Some(bytes) => (self.status, [(header::CONTENT_TYPE, JSON)], bytes).into_response(),
            None => (self.status, axum::Json(self.body)).into_response(),
        };
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say which scheme the client should authenticate with.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The envelope for a bare status (the framework's own rejections).
pub fn envelope_for_status(status: StatusCode) -> ApiError {
    let (code, message) = match status.as_u16() {
        400 | 415 => (ErrorCode::BadRequest, "the request is malformed"),
        401 => (ErrorCode::Unauthenticated, "authentication required"),
        403 => (ErrorCode::Forbidden, "not allowed"),
        404 => (ErrorCode::NotFound, "no such route"),
        405 => (
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route",
        ),
        413 => (ErrorCode::PayloadTooLarge, "the body is larger than 64 KiB"),
        414 => (
            ErrorCode::BadRequest,
            "the request target is longer than 8 KiB",
        ),
        431 => (
            ErrorCode::BadRequest,
            "the request headers are larger than 16 KiB or more than 64",
        ),
        422 => (ErrorCode::ValidationFailed, "the request is not valid"),
        429 => (ErrorCode::RateLimited, "too many requests"),
        408 | 503 | 504 => (ErrorCode::Unavailable, "the service is busy; try again"),
        _ => (ErrorCode::Internal, "internal error"),
    };
    let mut error = ApiError::new(code, message);
    if code == ErrorCode::ValidationFailed {
        error.body.details = Some(Vec::new());
    }
    if matches!(status.as_u16(), 405 | 414 | 431) {
        error.status = status;
    }
    error
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    async fn answer(error: ApiError) -> (StatusCode, Option<HeaderValue>, Bytes) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = to_bytes(response.into_body(), 1 << 16).await.expect("body");
        (status, content_type, body)
    }

    #[tokio::test]
    async fn the_prebuilt_sold_out_answer_is_the_envelope_it_stands_for() {
        let sold_out = || ApiError::new(ErrorCode::SoldOut, "not enough stock left");
        let expected = serde_json::to_vec(sold_out().body()).expect("serialises");
        for _ in 0..2 {
            let (status, content_type, body) = answer(sold_out()).await;
            assert_eq!(status, StatusCode::CONFLICT);
            assert_eq!(content_type, Some(JSON));
            assert_eq!(body, expected);
        }
        // Another sold-out message is its own envelope, not the kept one.
        let other = ApiError::new(ErrorCode::SoldOut, "gone");
        let (status, _, body) = answer(other.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let body: ErrorBody = serde_json::from_slice(&body).expect("an envelope");
        assert_eq!(&body, other.body());
    }
}
