//! Helpers shared by the integration tests: clients for the AWS API emulator, a freshly
//! provisioned stack per test (its own table, queues and secret prefix, so tests run in
//! parallel), a scriptable webhook receiver on `127.0.0.1:0`, and a delivery runner that
//! polls SQS like Lambda's event source mapping and calls the real delivery handler.
//!
//! Everything is used from the crate's root; the modules hold it by concern:
//!
//! - `stack`: [`Stack`] and [`StackOptions`], the functions wired over a stack's resources;
//! - `requests`: a stack's calls to its ingest and API routers;
//! - `runner`: the delivery and stream runners, and [`eventually`];
//! - `receiver`: the webhook [`Receiver`], and the loopback server it runs on;
//! - `aws`: the emulator's SDK configuration, provisioning, each function's clients and the
//!   [`RecordingQueue`];
//! - `inspect`: what a stack's queues, table and secrets hold;
//! - [`call`], [`recorder`], [`iam`]: the IAM check (the bench's cost meter names calls with
//!   [`call`] too); [`samples`], [`template`]: fixtures.

mod aws;
pub mod call;
pub mod iam;
mod inspect;
mod receiver;
pub mod recorder;
mod requests;
mod runner;
pub mod samples;
mod stack;
pub mod template;

pub use aws::{RecordingQueue, sdk_config, sdk_config_at, unique};
pub use receiver::{Received, Receiver, Reply, serve_on_loopback};
pub use runner::{DeliveryRunner, eventually};
pub use stack::{ADMIN_KEY, Stack, StackOptions, generous_limits, jq_sandbox};
