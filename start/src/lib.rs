//! The flash-sale service: configuration, wiring, CLI and graceful shutdown.
//!
//! [`launch`] builds everything from [`Settings`] and serves on a listener it is
//! given, so tests start the real service in-process on port 0.
#![forbid(unsafe_code)]

pub mod config;
mod launch;
pub mod reload;
mod serve;
pub mod telemetry;
mod values;

pub use config::Settings;
pub use launch::{Application, PortsHook, jwt_secret as launch_secret, launch, launch_with};
