//! What every domain failure has in common: a kind the outside maps to a status and a
//! stable code, and field-level validation details.

use std::fmt;

/// The classification of a failure; each maps to exactly one HTTP status and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Input that breaks a rule (`VALIDATION_FAILED`).
    Validation,
    /// A transition not allowed from the current status (`INVALID_STATE`).
    InvalidState,
    /// Unknown or invisible (`NOT_FOUND`).
    NotFound,
    /// Not enough stock (`SOLD_OUT`).
    SoldOut,
    /// The per-user limit would be passed (`LIMIT_EXCEEDED`).
    LimitExceeded,
    /// Not on sale now (`NOT_ON_SALE`).
    NotOnSale,
    /// A transaction id used by another order (`DUPLICATE_TRANSACTION`).
    DuplicateTransaction,
    /// An idempotency key reused with another request (`IDEMPOTENCY_KEY_REUSED`).
    IdempotencyKeyReused,
    /// A dependency cannot answer now; nothing was consumed (`UNAVAILABLE`).
    Unavailable,
}

impl ErrorKind {
    /// The stable wire code (the client's `ErrorCode` spells the same; a test in the
    /// app crate keeps them equal).
    pub fn code(self) -> &'static str {
        match self {
            Self::Validation => "VALIDATION_FAILED",
            Self::InvalidState => "INVALID_STATE",
            Self::NotFound => "NOT_FOUND",
            Self::SoldOut => "SOLD_OUT",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::NotOnSale => "NOT_ON_SALE",
            Self::DuplicateTransaction => "DUPLICATE_TRANSACTION",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

/// One field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's wire name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// One or more field violations, reported together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldViolation>);

impl ValidationErrors {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A single violation.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Takes the value of `result`, recording its violations.
    pub fn collect<T>(&mut self, result: Result<T, Self>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(errors) => {
                self.0.extend(errors.0);
                None
            }
        }
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The violations.
    pub fn violations(&self) -> &[FieldViolation] {
        &self.0
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect();
        write!(f, "invalid input ({})", parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

/// Any domain failure: each aggregate's error, plus plain validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Input that breaks a rule.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// An event rule.
    #[error(transparent)]
    Event(#[from] crate::event::EventError),
    /// A product rule.
    #[error(transparent)]
    Product(#[from] crate::product::ProductError),
    /// An order rule.
    #[error(transparent)]
    Order(#[from] crate::order::OrderError),
}

impl DomainError {
    /// The failure's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation(_) => ErrorKind::Validation,
            Self::Event(e) => e.kind(),
            Self::Product(e) => e.kind(),
            Self::Order(e) => e.kind(),
        }
    }

    /// The stable wire code.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Field violations, for validation failures.
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            Self::Validation(v)
            | Self::Event(crate::event::EventError::Validation(v))
            | Self::Product(crate::product::ProductError::Validation(v))
            | Self::Order(crate::order::OrderError::Validation(v)) => v.violations(),
            _ => &[],
        }
    }
}

/// Why something below the domain failed: a message for the reader and, when there
/// is one, the error that caused it (a driver's, a client's), kept as the source so
/// that a log line can show the whole chain ([`Chain`]).
#[derive(Debug)]
pub struct Cause {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// A cause that is only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// Shows an error with every source after it, `outer: inner: root` — how errors are
/// written to the log (`error = %Chain(&e)`), once, where they are handled.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
