//! Skyhook's shared library: domain types, signing, retry policy, ports and their adapters.
//!
//! Nothing here knows about Lambda: the function crates turn Lambda events into calls on
//! these types, and the local runner does the same from a TCP port and an SQS poller.

pub mod aws;
pub mod config;
pub mod event_type;
pub mod http;
pub mod ids;
pub mod memory;
pub mod model;
pub mod ports;
pub mod publish;
pub mod retry;
pub mod secret;
pub mod secret_cache;
pub mod signing;
pub mod telemetry;
pub mod url;

/// The version reported by `/v1/health` and sent in `User-Agent: Skyhook/<version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
