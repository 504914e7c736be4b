//! The flash-sale domain.
//!
//! Entities and value objects that are valid by construction, state machines as
//! methods (`order.cancel(now)?`), one error enum per aggregate with a stable code, and
//! the gateway traits (ports) the application needs from the outside world. Nothing
//! here does IO.
#![forbid(unsafe_code)]

pub mod allocation;
pub mod error;
pub mod event;
pub mod gateway;
pub mod ledger;
pub mod order;
pub mod page;
pub mod placement;
pub mod product;
pub mod stock;
pub mod strategy;
pub mod text;
pub mod user;

pub use error::{Cause, Chain, DomainError, ErrorKind, FieldViolation, ValidationErrors};
pub use strategy::Strategy;
pub use user::UserId;
