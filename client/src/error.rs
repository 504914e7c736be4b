//! The error envelope every failure answers with, and its stable codes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stable, machine-readable error code. Each one belongs to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: a body that is not JSON, or a content type other than JSON.
    BadRequest,
    /// 401: missing, malformed, badly signed or expired token.
    Unauthenticated,
    /// 403: the caller's role may not use this route.
    Forbidden,
    /// 404: unknown id or route, or not visible to this caller.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: not enough stock left for this request.
    SoldOut,
    /// 409: the buyer's per-user limit would be passed.
    LimitExceeded,
    /// 409: the event is not online, outside its window, or the product is offline.
    NotOnSale,
    /// 409: a transition not allowed from the current status.
    InvalidState,
    /// 409: the payment transaction id is already used by another order.
    DuplicateTransaction,
    /// 413: body over 64 KiB.
    PayloadTooLarge,
    /// 422: well-formed JSON with invalid fields; always with `details`.
    ValidationFailed,
    /// 422: the same idempotency key with a different request body.
    IdempotencyKeyReused,
    /// 429: a configured rate limit; `Retry-After` is set.
    RateLimited,
    /// 503: a dependency is down or too slow; nothing was consumed; safe to retry.
    Unavailable,
    /// 500: a bug, logged with the request id.
    Internal,
    /// A code this client version does not know (never sent, so not in the schema).
    #[serde(other, skip_serializing)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::SoldOut
            | Self::LimitExceeded
            | Self::NotOnSale
            | Self::InvalidState
            | Self::DuplicateTransaction => 409,
            Self::PayloadTooLarge => 413,
            Self::ValidationFailed | Self::IdempotencyKeyReused => 422,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal | Self::Unknown => 500,
        }
    }

    /// The code as it appears on the wire, e.g. `"SOLD_OUT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::SoldOut => "SOLD_OUT",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::NotOnSale => "NOT_ON_SALE",
            Self::InvalidState => "INVALID_STATE",
            Self::DuplicateTransaction => "DUPLICATE_TRANSACTION",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldErrorDto {
    /// The field's name or path, e.g. `flash_price` or `page_size`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation; never driver text or a stack trace.
    pub message: String,
    /// Field-level problems; present only for `VALIDATION_FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldErrorDto>>,
    /// Dependency checks; present only on `/readyz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, String>>,
}

impl ErrorBody {
    /// An envelope without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            checks: None,
        }
    }

    /// The message of the detail about `field`, if there is one.
    pub fn detail(&self, field: &str) -> Option<&str> {
        self.details
            .as_deref()?
            .iter()
            .find(|d| d.field == field)
            .map(|d| d.message.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_spelled_on_the_wire_as_as_str_says() {
        let codes = [
            ErrorCode::BadRequest,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::SoldOut,
            ErrorCode::LimitExceeded,
            ErrorCode::NotOnSale,
            ErrorCode::InvalidState,
            ErrorCode::DuplicateTransaction,
            ErrorCode::PayloadTooLarge,
            ErrorCode::ValidationFailed,
            ErrorCode::IdempotencyKeyReused,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ];
        for code in codes {
            let wire = serde_json::to_value(code).expect("serialises");
            assert_eq!(wire, code.as_str(), "{code:?}");
            let back: ErrorCode = serde_json::from_value(wire).expect("parses");
            assert_eq!(back, code);
        }
    }
}
