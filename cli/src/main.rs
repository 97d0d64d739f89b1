//! The `skyhook` command: `skyhook local` runs the whole system on one machine; the operator
//! commands talk to Skyhook's HTTP API; `listen` and `verify` check signatures locally.
//!
//! This file holds the top-level command and its global flag, and hands each command to its
//! module in `commands`, which holds that command's own flags.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::api_keys::{self, ApiKeyCommand, AuditArgs};
use commands::args::ApiArgs;
use commands::deliveries::{self, DeliveriesArgs, StatsArgs};
use commands::dlq::{self, DlqCommand};
use commands::events::{self, EventCommand};
use commands::keyring::{self, KeyringCommand, SecretsCommand};
use commands::listen::{self, ListenArgs, VerifyArgs};
use commands::local;
use commands::sources::{self, SourceCommand};
use commands::subscribers::{self, SubscriberCommand};
use commands::tenants::{self, TenantCommand};
use skyhook_cli::client::CliError;

mod commands;

#[derive(Parser)]
#[command(
    name = "skyhook",
    version,
    about = "Skyhook: webhook delivery on AWS serverless"
)]
struct Cli {
    /// Print the API's JSON answers as they are, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system on this machine against an AWS API emulator (AWS_ENDPOINT_URL):
    /// provisions its resources, serves the API on SKYHOOK_LOCAL_ADDR and delivers webhooks.
    Local,
    /// Manage subscribers (webhook endpoints).
    #[command(subcommand)]
    Subscribers(SubscriberCommand),
    /// Publish events and see how their deliveries went.
    #[command(subcommand)]
    Events(EventCommand),
    /// Browse the delivery log (every attempt).
    Deliveries(DeliveriesArgs),
    /// Delivery totals: success, failure, average attempts; with --series, attempts over time.
    Stats(StatsArgs),
    /// Dead deliveries: list them, send them back for a fresh set of attempts.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// API keys: each belongs to one tenant and has one role (reader, publisher, admin).
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeyCommand),
    /// Inbound sources: where webhooks from outside (GitHub, Stripe, …) arrive, are verified
    /// and become events.
    #[command(subcommand)]
    Sources(SourceCommand),
    /// Tenants and their publish limits (the bootstrap key only).
    #[command(subcommand)]
    Tenants(TenantCommand),
    /// The keyring secrets are sealed under in the table (AWS credentials, not an API key).
    #[command(subcommand)]
    Keyring(KeyringCommand),
    /// Secrets from before sealing: move them into the table (AWS credentials).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The calling key: its tenant and role.
    Whoami(ApiArgs),
    /// Management changes of the tenant, newest first.
    Audit(AuditArgs),
    /// Receive webhooks locally, verify each signature and print it.
    Listen(ListenArgs),
    /// Verify the signature of a saved request (as written by `listen --save`).
    Verify(VerifyArgs),
}

/// Hands each command to its module.
async fn run(cli: Cli) -> Result<(), CliError> {
    let json_mode = cli.json;
    match cli.command {
        Command::Local => local::run().await,
        Command::Subscribers(cmd) => subscribers::run(json_mode, cmd).await,
        Command::Events(cmd) => events::run(json_mode, cmd).await,
        Command::Deliveries(args) => deliveries::list(json_mode, args).await,
        Command::Stats(args) => deliveries::stats(json_mode, args).await,
        Command::Dlq(cmd) => dlq::run(json_mode, cmd).await,
        Command::ApiKeys(cmd) => api_keys::run(json_mode, cmd).await,
        Command::Sources(cmd) => sources::run(json_mode, cmd).await,
        Command::Tenants(cmd) => tenants::run(json_mode, cmd).await,
        Command::Keyring(cmd) => keyring::keyring(json_mode, cmd).await,
        Command::Secrets(cmd) => keyring::secrets(json_mode, cmd).await,
        Command::Audit(args) => api_keys::audit(json_mode, args).await,
        Command::Whoami(api) => api_keys::whoami(json_mode, &api).await,
        Command::Listen(args) => listen::listen(args).await,
        Command::Verify(args) => listen::verify(args),
    }
}

fn main() -> ExitCode {
    // `skyhook local` runs transforms in worker processes of this binary: started as one,
    // serve that, before any runtime starts.
    skyhook_process::serve_if_worker();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Clap's own checks of every command (unique argument ids, valid conflicts, …), which
    /// would otherwise only fail when a user asks for that command.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
