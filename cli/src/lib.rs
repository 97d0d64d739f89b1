//! Skyhook on one machine. `esm` emulates Lambda's SQS event source mapping so the local
//! runner and the end-to-end tests drive the very handlers the Lambda binaries run.

pub mod esm;
