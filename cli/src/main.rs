//! The `skyhook` command: `skyhook local` runs the whole system on one machine; the operator
//! commands talk to Skyhook's HTTP API; `listen` and `verify` check signatures locally.
//!
//! This file holds the flags and hands each command to its module in `commands`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use commands::{api_keys, deliveries, dlq, events, listen, local, sources, subscribers, tenants};
use skyhook_cli::client::{API_KEY, API_URL, ApiClient, CliError};

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

#[derive(Args, Clone)]
struct ApiArgs {
    /// Base URL of the Skyhook API.
    #[arg(long, env = API_URL, default_value = skyhook_cli::client::DEFAULT_API_URL)]
    api_url: String,
    /// API key (sent as a bearer token).
    #[arg(long, env = API_KEY, hide_env_values = true)]
    api_key: Option<String>,
}

impl ApiArgs {
    fn client(&self) -> Result<ApiClient, CliError> {
        ApiClient::new(Some(self.api_url.clone()), self.api_key.clone())
    }
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
    Stats {
        #[command(flatten)]
        api: ApiArgs,
        /// Only this subscriber's deliveries.
        #[arg(long = "subscriber")]
        subscriber: Option<String>,
        #[command(flatten)]
        series: SeriesArgs,
    },
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
    /// The calling key: its tenant and role.
    Whoami {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Management changes of the tenant, newest first.
    Audit {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Receive webhooks locally, verify each signature and print it.
    Listen(ListenArgs),
    /// Verify the signature of a saved request (as written by `listen --save`).
    Verify(VerifyArgs),
}

#[derive(Subcommand)]
enum SubscriberCommand {
    /// Create a subscriber; prints its id and signing secret (shown only this once).
    Create {
        #[command(flatten)]
        api: ApiArgs,
        /// Endpoint URL (https; http and loopback are accepted by `skyhook local`).
        #[arg(long)]
        url: String,
        /// Event types to receive: `order.created`, `order.*` or `*`. Repeatable.
        #[arg(long = "event-type", required = true)]
        event_types: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Signing secret `whsec_…`; generated when omitted.
        #[arg(long)]
        secret: Option<String>,
        /// Custom header sent with every delivery, as NAME=VALUE. Repeatable.
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// `standard` (default), `hex-sha256` or `hex-sha512`.
        #[arg(long)]
        signature_scheme: Option<String>,
        /// Most deliveries in flight to it at once per delivery instance (1–100, default 10).
        #[arg(long)]
        max_concurrency: Option<u32>,
        /// Most deliveries a second across all instances (1–10000); unlimited when omitted.
        #[arg(long)]
        rate_limit: Option<u32>,
        #[command(flatten)]
        transform: TransformArgs,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// List subscribers, a page at a time or all of them.
    List {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only active (true) or inactive (false) subscribers.
        #[arg(long)]
        active: Option<bool>,
        /// Start after this cursor (from a previous page's next_cursor).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow next_cursor to the end.
        #[arg(long)]
        all: bool,
    },
    /// Show one subscriber.
    Get {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Delete a subscriber and its signing secret.
    Delete {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Change a subscriber; only the options given change.
    Update {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// Replaces the event types. Repeatable.
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        #[arg(long)]
        active: Option<bool>,
        #[arg(long)]
        description: Option<String>,
        /// Replaces the custom headers, as NAME=VALUE. Repeatable.
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// Removes every custom header.
        #[arg(long, conflicts_with = "headers")]
        clear_headers: bool,
        #[arg(long)]
        signature_scheme: Option<String>,
        /// Most deliveries in flight to it at once per delivery instance (1–100).
        #[arg(long)]
        max_concurrency: Option<u32>,
        /// Most deliveries a second across all instances (1–10000).
        #[arg(long, conflicts_with = "no_rate_limit")]
        rate_limit: Option<u32>,
        /// Removes the rate limit.
        #[arg(long)]
        no_rate_limit: bool,
        #[command(flatten)]
        transform: TransformArgs,
        /// Removes the transform: events are sent as they are.
        #[arg(long, conflicts_with_all = ["transform", "transform_file"])]
        no_transform: bool,
        #[command(flatten)]
        filter: FilterArgs,
        /// Removes the content filter: every event its types match is sent.
        #[arg(long, conflicts_with_all = ["filter", "filter_file"])]
        no_filter: bool,
    },
    /// Show the body a delivery of a sample event would send, through the subscriber's
    /// transform (or the one given, which is not saved).
    PreviewTransform {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        /// The sample event's type.
        #[arg(long = "type", default_value = "skyhook.preview")]
        event_type: String,
        /// The sample event's data as JSON.
        #[arg(long, default_value = "{}")]
        data: String,
        #[command(flatten)]
        transform: TransformArgs,
    },
    /// Resume deliveries to a subscriber (what was parked while it was disabled is sent).
    Enable {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Pause deliveries to a subscriber (messages for it are dropped as failed).
    Disable {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// New signing secret; the previous one keeps signing alongside for the grace period.
    RotateSecret {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        /// The new secret `whsec_…`; generated when omitted.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Send a `skyhook.test` event to this subscriber only.
    Test {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Re-enqueue this subscriber's failed deliveries in a time window.
    Recover {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        /// Start of the window (RFC 3339, e.g. 2026-11-23T00:00:00Z).
        #[arg(long)]
        since: String,
        /// End of the window (RFC 3339); now when omitted.
        #[arg(long)]
        until: Option<String>,
    },
    /// Create or update subscribers from a YAML file:
    /// `endpoints: [{id?, url, secret?, events: [...], enabled, description}]`.
    /// Entries with an id update that subscriber; the others are created.
    Import {
        #[command(flatten)]
        api: ApiArgs,
        file: PathBuf,
        /// Check the file and show what would be done, without sending anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Attempts over time (`GET /v1/stats/timeseries`).
#[derive(Args, Clone, Default)]
pub(crate) struct SeriesArgs {
    /// Show attempts over time, one line per bucket: successes, failures, p50/p95 latency.
    #[arg(long)]
    pub(crate) series: bool,
    /// With --series: minute, hour (default) or day.
    #[arg(long, requires = "series")]
    pub(crate) bucket: Option<String>,
    /// With --series: from the bucket holding this time (RFC 3339).
    #[arg(long, requires = "series")]
    pub(crate) since: Option<String>,
    /// With --series: to the bucket holding this time (RFC 3339; default now).
    #[arg(long, requires = "series")]
    pub(crate) until: Option<String>,
}

/// A jq program that maps `{"type", "timestamp", "data"}` to the body sent.
#[derive(Args, Clone, Default)]
pub(crate) struct TransformArgs {
    /// The transform, a jq program, e.g. '{kind: .type, order: .data.id}'.
    #[arg(long, conflicts_with = "transform_file")]
    pub(crate) transform: Option<String>,
    /// A file holding the transform (`-` for standard input).
    #[arg(long)]
    pub(crate) transform_file: Option<PathBuf>,
}

/// A jq expression over `{"type", "timestamp", "data"}`: an event goes to the subscriber
/// only when it gives `true`.
#[derive(Args, Clone, Default)]
pub(crate) struct FilterArgs {
    /// The content filter, a jq expression, e.g. '.data.total >= 100'.
    #[arg(long, conflicts_with = "filter_file")]
    pub(crate) filter: Option<String>,
    /// A file holding the content filter (`-` for standard input).
    #[arg(long)]
    pub(crate) filter_file: Option<PathBuf>,
}

#[derive(Args)]
struct DeliveriesArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[arg(long = "subscriber")]
    subscriber: Option<String>,
    #[arg(long = "event")]
    event: Option<String>,
    /// success or failure.
    #[arg(long)]
    outcome: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[arg(long)]
    cursor: Option<String>,
    /// Follow next_cursor to the end.
    #[arg(long)]
    all: bool,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// What is dead, why, and for whom.
    List {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long = "subscriber")]
        subscriber: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        all: bool,
    },
    /// Send dead messages back to the delivery queue (all, or one subscriber's); each keeps
    /// its webhook-id and gets a fresh set of attempts.
    Redrive {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long = "subscriber")]
        subscriber: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key; prints it (shown only this once).
    Create {
        #[command(flatten)]
        api: ApiArgs,
        /// reader, publisher or admin.
        #[arg(long)]
        role: String,
        /// Tenant of the key (only the bootstrap key may name another tenant).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// The tenant's keys (never the keys themselves).
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a key at once.
    Delete {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Every tenant, with the limits it publishes under.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// One tenant.
    Get {
        #[command(flatten)]
        api: ApiArgs,
        tenant: String,
    },
    /// Set a tenant's publish limits (recording it if new), or put it back on the defaults.
    Set {
        #[command(flatten)]
        api: ApiArgs,
        tenant: String,
        /// Publishes a second on average (1 to 100,000).
        #[arg(
            long = "events-per-second",
            required_unless_present = "defaults",
            requires = "burst"
        )]
        events_per_second: Option<u32>,
        /// Publishes at once after a quiet spell (1 to 1,000,000).
        #[arg(long, requires = "events_per_second")]
        burst: Option<u32>,
        /// Back to the stack's defaults (SKYHOOK_TENANT_EVENTS_PER_SECOND, SKYHOOK_TENANT_BURST).
        #[arg(long, conflicts_with_all = ["events_per_second", "burst"])]
        defaults: bool,
    },
}

#[derive(Subcommand)]
enum SourceCommand {
    /// Create a source; prints its inbound URL and its secret (shown only this once).
    Create {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long)]
        name: String,
        /// How the sender signs: standard-webhooks, github, stripe or hmac-sha256.
        #[arg(long)]
        verification: String,
        /// The secret the sender signs with (a whsec_… key for standard-webhooks); generated
        /// when omitted.
        #[arg(long)]
        secret: Option<String>,
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        hmac: HmacArgs,
    },
    /// List sources, a page at a time or all of them.
    List {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Start after this cursor (from a previous page's next_cursor).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow next_cursor to the end.
        #[arg(long)]
        all: bool,
    },
    /// Show one source (never its secret).
    Get {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Change a source; only the options given change. A new --secret applies at once.
    Update {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        verification: Option<String>,
        #[arg(long)]
        secret: Option<String>,
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        hmac: HmacArgs,
    },
    /// Delete a source and its secret; its inbound URL stops at once.
    Delete {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Sign a sample as the source's sender would (its scheme, now, a fresh message id) and
    /// post it to the source's inbound URL.
    SendTest {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        /// The source's secret, as the sender holds it.
        #[arg(long)]
        secret: String,
        /// The webhook's body, JSON.
        #[arg(long, default_value = "{}")]
        data: String,
        /// A header to send as well, as NAME=VALUE (e.g. X-GitHub-Event=push). Repeatable.
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
    },
}

/// Where a source's event types come from: one of these, with an optional prefix.
#[derive(Args, Clone, Default)]
struct RuleArgs {
    /// Every message gets this event type.
    #[arg(long = "type", conflicts_with_all = ["type_header", "type_pointer"])]
    type_fixed: Option<String>,
    /// The event type is this request header's value (e.g. X-GitHub-Event).
    #[arg(long, conflicts_with = "type_pointer")]
    type_header: Option<String>,
    /// The event type is the string at this JSON pointer in the body (e.g. /type).
    #[arg(long)]
    type_pointer: Option<String>,
    /// Put before a header's or pointer's value (e.g. github.).
    #[arg(long)]
    type_prefix: Option<String>,
}

/// The `hmac-sha256` scheme's settings.
#[derive(Args, Clone, Default)]
struct HmacArgs {
    /// The header holding the signature.
    #[arg(long)]
    hmac_header: Option<String>,
    /// The text before the signature in that header (e.g. sha256=).
    #[arg(long)]
    hmac_prefix: Option<String>,
    /// hex (default) or base64.
    #[arg(long)]
    hmac_encoding: Option<String>,
}

#[derive(Subcommand)]
enum EventCommand {
    /// Publish an event.
    Send {
        #[command(flatten)]
        api: ApiArgs,
        /// Event type, e.g. order.created.
        #[arg(long = "type")]
        event_type: String,
        /// The event's data as JSON.
        #[arg(long, conflicts_with = "data_file")]
        data: Option<String>,
        /// A file holding the event's data as JSON (`-` for standard input).
        #[arg(long)]
        data_file: Option<PathBuf>,
        /// Repeats with the same key within 24 h return the same event.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Deliver only to these subscribers. Repeatable.
        #[arg(long = "subscriber")]
        subscribers: Vec<String>,
        /// Sent on every delivery as x-correlation-id.
        #[arg(long)]
        correlation_id: Option<String>,
    },
    /// Show an event and its delivery status per subscriber.
    Show {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Send an event to one of its subscribers again, with the same webhook-id.
    Resend {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        /// The subscriber to send it to (sub_…).
        #[arg(long)]
        subscriber: String,
    },
}

#[derive(Args)]
struct ListenArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Path to use in the subscription URL made by --subscribe.
    #[arg(long, default_value = "/webhooks")]
    path: String,
    /// Secret to verify deliveries with. Repeatable (e.g. during a rotation).
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// Subscribe this receiver to these event types through the API for as long as it
    /// runs (its secret is then used for verification). Repeatable.
    #[arg(long = "subscribe")]
    subscribe: Vec<String>,
    /// With --subscribe: the subscription's transform.
    #[command(flatten)]
    transform: TransformArgs,
    /// With --subscribe: the subscription's content filter.
    #[command(flatten)]
    filter: FilterArgs,
    #[command(flatten)]
    api: ApiArgs,
    /// Status to answer verified deliveries with (e.g. 500 to exercise retries).
    #[arg(long, default_value_t = 200)]
    status: u16,
    /// Save every request as JSON in this directory, for `skyhook verify`.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Exit (with status 0) after this many verified deliveries.
    #[arg(long)]
    exit_after: Option<usize>,
}

#[derive(Args)]
struct VerifyArgs {
    /// Secret `whsec_…` to verify with. Repeatable; any match verifies.
    #[arg(long = "secret", required = true)]
    secrets: Vec<String>,
    /// Skip the ±5 minute timestamp check (the request was saved earlier).
    #[arg(long)]
    ignore_age: bool,
    /// The saved request (`-` for standard input).
    file: PathBuf,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// Hands each command to its module.
async fn run(cli: Cli) -> Result<(), CliError> {
    let json_mode = cli.json;
    match cli.command {
        Command::Local => local::run().await,
        Command::Subscribers(cmd) => subscribers::run(json_mode, cmd).await,
        Command::Events(cmd) => events::run(json_mode, cmd).await,
        Command::Deliveries(args) => deliveries::list(json_mode, args).await,
        Command::Stats {
            api,
            subscriber,
            series,
        } if series.series => deliveries::series(json_mode, &api, subscriber, series).await,
        Command::Stats {
            api, subscriber, ..
        } => deliveries::stats(json_mode, &api, subscriber).await,
        Command::Dlq(cmd) => dlq::run(json_mode, cmd).await,
        Command::ApiKeys(cmd) => api_keys::run(json_mode, cmd).await,
        Command::Sources(cmd) => sources::run(json_mode, cmd).await,
        Command::Tenants(cmd) => tenants::run(json_mode, cmd).await,
        Command::Audit { api, limit } => api_keys::audit(json_mode, &api, limit).await,
        Command::Whoami { api } => api_keys::whoami(json_mode, &api).await,
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
