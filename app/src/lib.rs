//! The flash-sale application layer.
//!
//! One executor per use case (`EventCreateCmdExe::execute`), each holding the ports it
//! needs as `Arc<dyn …Gateway>`; the buyer-facing [`catalogue`] read cache; the
//! [`policy`] that picks each event's ordering strategy; and the [`assembler`] that
//! turns domain objects into the wire DTOs. No IO of its own: every effect goes
//! through a port.
#![forbid(unsafe_code)]

pub mod assembler;
pub mod budget;
pub mod catalogue;
pub mod console;
pub mod error;
pub mod event;
mod locks;
pub mod order;
pub mod policy;
pub mod ports;
pub mod probe;
pub mod product;
pub mod stock;
pub mod switch;

pub use error::AppError;
pub use ports::{Executors, Ports, Settings};

/// Who is calling, as the adapter authenticated them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user id (the token's `sub`).
    pub user_id: flash_sale_domain::UserId,
    /// What they may do.
    pub role: Role,
}

impl Caller {
    /// A caller with user id `sub`.
    pub fn new(sub: &str, role: Role) -> Result<Self, AppError> {
        Ok(Self {
            user_id: flash_sale_domain::UserId::parse(sub)?,
            role,
        })
    }

    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages events and products; may also buy.
    Admin,
    /// Browses and buys.
    Buyer,
}

impl Role {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Buyer => "buyer",
        }
    }

    /// Parses a claim value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "buyer" => Some(Self::Buyer),
            _ => None,
        }
    }
}
