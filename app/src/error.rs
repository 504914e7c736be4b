//! The application's error: a domain rule, a missing resource, an unavailable
//! dependency, or a bug.

use flash_sale_domain::gateway::GatewayError;
pub use flash_sale_domain::{DomainError, ErrorKind, FieldViolation};

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
    #[error("unavailable: {0}")]
    Unavailable(String),
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
            GatewayError::Duplicate("transaction_id") => {
                Self::Domain(flash_sale_domain::order::OrderError::DuplicateTransaction.into())
            }
            GatewayError::Duplicate(key) => {
                Self::Internal(anyhow::anyhow!("unexpected duplicate {key}"))
            }
            GatewayError::Unavailable(why) => Self::Unavailable(why),
            GatewayError::Internal(why) => Self::Internal(anyhow::anyhow!(why)),
        }
    }
}

impl From<flash_sale_domain::ValidationErrors> for AppError {
    fn from(errors: flash_sale_domain::ValidationErrors) -> Self {
        Self::Domain(errors.into())
    }
}
