//! The `skyhook` command's library: the local runner, the SQS event-source emulation it and
//! the tests share, the operator commands' API client, and the verifying local receiver.

pub mod client;
pub mod import;
pub mod listen;
pub mod local;
pub mod progress;
pub mod sqs_poller;
pub mod streams;
