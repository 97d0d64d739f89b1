//! Integration and end-to-end tests against an AWS API emulator (moto, or LocalStack via
//! `AWS_ENDPOINT_URL`). One test binary; each test provisions its own resources.

mod api;
mod auth;
mod bad_input;
mod contract;
mod contract_rules;
mod deliveries;
mod delivery;
mod dlq;
mod events;
mod health;
mod inbound;
mod ingest;
mod jq;
mod openapi;
mod sealed;
mod subscribers;
mod template;
mod tenants;
