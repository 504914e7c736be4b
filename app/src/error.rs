//! The application's error: a domain rule, a missing resource, an unavailable
//! dependency, or a bug.

pub use flash_sale_client::ErrorCode;
use flash_sale_domain::gateway::{GatewayError, UniqueKey};
pub use flash_sale_domain::{Cause, Chain, DomainError, ErrorKind, FieldViolation};

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A domain rule said no.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The resource does not exist or is not visible to the caller.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A dependency is down or too slow; nothing was consumed; safe to retry.
    #[error("unavailable")]
    Unavailable(#[source] Cause),
    /// A bug or corrupt data.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A domain rejection.
    pub fn domain(error: impl Into<DomainError>) -> Self {
        Self::Domain(error.into())
    }
}

impl From<GatewayError> for AppError {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::Rejected(e) => Self::Domain(e),
            GatewayError::NotFound => Self::NotFound("resource"),
            GatewayError::Duplicate(UniqueKey::TransactionId) => {
                Self::Domain(flash_sale_domain::order::OrderError::DuplicateTransaction.into())
            }
            GatewayError::Duplicate(key) => {
                Self::Internal(anyhow::anyhow!("unexpected duplicate {key}"))
            }
            GatewayError::Unavailable(cause) => Self::Unavailable(cause),
            internal @ GatewayError::Internal(_) => Self::Internal(internal.into()),
        }
    }
}

/// The envelope's code for a kind of failure: the one place where the domain's kinds
/// meet the client's `ErrorCode` (a test checks that both spell each code alike).
pub fn error_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::Validation => ErrorCode::ValidationFailed,
        ErrorKind::InvalidState => ErrorCode::InvalidState,
        ErrorKind::NotFound => ErrorCode::NotFound,
        ErrorKind::SoldOut => ErrorCode::SoldOut,
        ErrorKind::LimitExceeded => ErrorCode::LimitExceeded,
        ErrorKind::NotOnSale => ErrorCode::NotOnSale,
        ErrorKind::DuplicateTransaction => ErrorCode::DuplicateTransaction,
        ErrorKind::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
        ErrorKind::Unavailable => ErrorCode::Unavailable,
    }
}

impl From<flash_sale_domain::ValidationErrors> for AppError {
    fn from(errors: flash_sale_domain::ValidationErrors) -> Self {
        Self::Domain(errors.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_the_code_the_domain_names() {
        let kinds = [
            ErrorKind::Validation,
            ErrorKind::InvalidState,
            ErrorKind::NotFound,
            ErrorKind::SoldOut,
            ErrorKind::LimitExceeded,
            ErrorKind::NotOnSale,
            ErrorKind::DuplicateTransaction,
            ErrorKind::IdempotencyKeyReused,
            ErrorKind::Unavailable,
        ];
        for kind in kinds {
            assert_eq!(error_code(kind).as_str(), kind.code(), "{kind:?}");
        }
    }
}
