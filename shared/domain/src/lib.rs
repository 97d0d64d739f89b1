//! Skyhook's domain: types, signing, the retry policy, the fan-out, the stats fold, the
//! caches and the ports. Nothing here knows AWS, HTTP frameworks or Lambda: the adapters
//! (`skyhook-aws`) implement the ports, the HTTP plumbing (`skyhook-http`) and the function
//! crates turn requests and Lambda events into calls on these types.

pub mod breaker;
pub mod config;
#[cfg(any(test, feature = "testing"))]
pub mod contract;
pub mod directory;
pub mod event_type;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod ids;
pub mod inbound;
pub mod jq;
pub mod keyring;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod model;
pub mod ports;
pub mod publish;
pub mod redrive;
pub mod retry;
pub mod secret;
pub mod series;
pub mod signing;
pub mod stats_fold;
pub mod tenants;
pub mod url;

/// The version reported by `/v1/health` and sent in `User-Agent: Skyhook/<version>`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
