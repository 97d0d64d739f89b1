//! The `skyhook` command: `skyhook local` runs the whole system on one machine; the operator
//! commands talk to Skyhook's HTTP API; `listen` and `verify` check signatures locally.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use skyhook_cli::client::{API_KEY, API_URL, ApiClient, CliError};
use skyhook_cli::import::Plan;
use skyhook_cli::listen::{ListenOptions, Listener, Verdict, describe, read_saved, verify_request};
use skyhook_cli::local::{LocalConfig, banner};
use skyhook_cli::progress::Progress;
use skyhook_domain::config::ProcessEnv;
use skyhook_domain::secret::SigningSecret;

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
    /// Delivery totals: success, failure, average attempts.
    Stats {
        #[command(flatten)]
        api: ApiArgs,
        /// Only this subscriber's deliveries.
        #[arg(long = "subscriber")]
        subscriber: Option<String>,
    },
    /// Dead deliveries: list them, send them back for a fresh set of attempts.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// API keys: each belongs to one tenant and has one role (reader, publisher, admin).
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeyCommand),
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

fn parse_secrets(raw: &[String]) -> Result<Vec<SigningSecret>, CliError> {
    raw.iter()
        .map(|s| SigningSecret::parse(s).map_err(|e| CliError::Usage(format!("--secret: {e}"))))
        .collect()
}

fn print_value(json_mode: bool, value: &Value) {
    if json_mode {
        println!("{value}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }
}

/// Percent-encodes a query value (timestamps carry `:` and `+`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads a paginated list: one page, or every page with `all`. `query` holds the filters
/// as `(name, value)`; returns the rows and the cursor of the next page, if any.
async fn list_pages(
    client: &ApiClient,
    path: &str,
    query: &[(&str, Option<String>)],
    limit: u32,
    cursor: Option<String>,
    all: bool,
) -> Result<(Vec<Value>, Option<String>), CliError> {
    let mut cursor = cursor;
    let mut rows = Vec::new();
    // A bound on pages, so a misbehaving server cannot keep the command looping forever.
    for _ in 0..100_000 {
        let mut url = format!("{path}?limit={limit}");
        for (name, value) in query {
            if let Some(v) = value {
                url.push_str(&format!("&{name}={}", encode(v)));
            }
        }
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", encode(c)));
        }
        let page = client.call(Method::GET, &url, None, &[]).await?;
        rows.extend(page["data"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if !all || cursor.is_none() {
            break;
        }
    }
    Ok((rows, cursor))
}

fn print_rows(
    json_mode: bool,
    rows: &[Value],
    cursor: &Option<String>,
    line: impl Fn(&Value) -> String,
) {
    if json_mode {
        println!("{}", json!({"data": rows, "next_cursor": cursor}));
    } else {
        for r in rows {
            println!("{}", line(r));
        }
        if let Some(c) = cursor {
            println!("more: --cursor {c}");
        }
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or("")
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c().await,
            };
        tokio::select! {
            _ = ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let json_mode = cli.json;
    match cli.command {
        Command::Local => {
            skyhook_domain::telemetry::init().map_err(|e| CliError::Usage(e.to_string()))?;
            let cfg =
                LocalConfig::from_env(&ProcessEnv).map_err(|e| CliError::Usage(e.to_string()))?;
            skyhook_cli::local::run(cfg, interrupted(), |cfg, running| {
                println!("{}", banner(cfg, running));
            })
            .await
            .map_err(|e| match e {
                skyhook_cli::local::LocalError::Config(c) => CliError::Usage(c.to_string()),
                other => CliError::Failed(other.to_string()),
            })
        }
        Command::Subscribers(cmd) => subscribers(json_mode, cmd).await,
        Command::Events(cmd) => events(json_mode, cmd).await,
        Command::Deliveries(args) => deliveries(json_mode, args).await,
        Command::Stats { api, subscriber } => {
            let path = match subscriber {
                Some(id) => format!("/v1/stats?subscriber_id={}", encode(&id)),
                None => "/v1/stats".to_string(),
            };
            let stats = api.client()?.call(Method::GET, &path, None, &[]).await?;
            print_value(json_mode, &stats);
            Ok(())
        }
        Command::Dlq(cmd) => dlq(json_mode, cmd).await,
        Command::ApiKeys(cmd) => api_keys(json_mode, cmd).await,
        Command::Audit { api, limit } => {
            let page = api
                .client()?
                .call(Method::GET, &format!("/v1/audit?limit={limit}"), None, &[])
                .await?;
            if json_mode {
                println!("{page}");
            } else {
                for r in page["data"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "{}  {:<12}  {:<22}  {}",
                        r["at"].as_str().unwrap_or(""),
                        r["actor"].as_str().unwrap_or(""),
                        r["action"].as_str().unwrap_or(""),
                        r["resource"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        Command::Listen(args) => listen(args).await,
        Command::Verify(args) => {
            let secrets = parse_secrets(&args.secrets)?;
            let req = read_saved(&args.file).map_err(CliError::Usage)?;
            let verdict = verify_request(
                &req,
                &secrets,
                chrono::Utc::now().timestamp(),
                (!args.ignore_age).then_some(skyhook_domain::signing::DEFAULT_TOLERANCE_SECS),
            );
            print!("{}", describe(&req, &verdict));
            match verdict {
                Verdict::Verified(_) => Ok(()),
                Verdict::Invalid(e) => {
                    Err(CliError::Failed(format!("signature does not verify: {e}")))
                }
                Verdict::Unchecked => Err(CliError::Usage("no secret given".into())),
            }
        }
    }
}

async fn subscribers(json_mode: bool, cmd: SubscriberCommand) -> Result<(), CliError> {
    match cmd {
        SubscriberCommand::Create {
            api,
            url,
            event_types,
            description,
            secret,
            headers,
            signature_scheme,
            max_concurrency,
            rate_limit,
        } => {
            let mut body = json!({"url": url, "event_types": event_types});
            if let Some(n) = max_concurrency {
                body["max_concurrency"] = json!(n);
            }
            if let Some(n) = rate_limit {
                body["rate_limit"] = json!(n);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(s) = secret {
                body["secret"] = json!(s);
            }
            if !headers.is_empty() {
                body["headers"] = json!(
                    headers
                        .into_iter()
                        .collect::<std::collections::BTreeMap<String, String>>()
                );
            }
            if let Some(s) = signature_scheme {
                body["signature_scheme"] = json!(s);
            }
            let created = api
                .client()?
                .call(Method::POST, "/v1/subscribers", Some(&body), &[])
                .await?;
            if json_mode {
                println!("{created}");
            } else {
                println!("id      {}", created["id"].as_str().unwrap_or(""));
                println!("url     {}", created["url"].as_str().unwrap_or(""));
                println!(
                    "secret  {}   (shown only now)",
                    created["secret"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        SubscriberCommand::List {
            api,
            limit,
            active,
            cursor,
            all,
        } => {
            let (rows, cursor) = list_pages(
                &api.client()?,
                "/v1/subscribers",
                &[("active", active.map(|a| a.to_string()))],
                limit,
                cursor,
                all,
            )
            .await?;
            print_rows(json_mode, &rows, &cursor, |s| {
                format!(
                    "{}  {:<8}  {}  [{}]",
                    field(s, "id"),
                    if s["active"] == true {
                        "active"
                    } else {
                        "inactive"
                    },
                    field(s, "url"),
                    s["event_types"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                )
            });
            Ok(())
        }
        SubscriberCommand::Get { api, id } => {
            let s = api
                .client()?
                .call(Method::GET, &format!("/v1/subscribers/{id}"), None, &[])
                .await?;
            print_value(json_mode, &s);
            Ok(())
        }
        SubscriberCommand::Delete { api, id } => {
            api.client()?
                .call(Method::DELETE, &format!("/v1/subscribers/{id}"), None, &[])
                .await?;
            if !json_mode {
                println!("deleted {id}");
            }
            Ok(())
        }
        SubscriberCommand::Update {
            api,
            id,
            url,
            event_types,
            active,
            description,
            headers,
            clear_headers,
            signature_scheme,
            max_concurrency,
            rate_limit,
            no_rate_limit,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(n) = max_concurrency {
                body.insert("max_concurrency".into(), json!(n));
            }
            if let Some(n) = rate_limit {
                body.insert("rate_limit".into(), json!(n));
            } else if no_rate_limit {
                body.insert("rate_limit".into(), Value::Null);
            }
            if let Some(u) = url {
                body.insert("url".into(), json!(u));
            }
            if !event_types.is_empty() {
                body.insert("event_types".into(), json!(event_types));
            }
            if let Some(a) = active {
                body.insert("active".into(), json!(a));
            }
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            if clear_headers {
                body.insert("headers".into(), Value::Null);
            } else if !headers.is_empty() {
                body.insert(
                    "headers".into(),
                    json!(
                        headers
                            .into_iter()
                            .collect::<std::collections::BTreeMap<String, String>>()
                    ),
                );
            }
            if let Some(s) = signature_scheme {
                body.insert("signature_scheme".into(), json!(s));
            }
            if body.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give at least one option".into(),
                ));
            }
            patch_subscriber(json_mode, &api, &id, Value::Object(body)).await
        }
        SubscriberCommand::Enable { api, id } => {
            patch_subscriber(json_mode, &api, &id, json!({"active": true})).await
        }
        SubscriberCommand::Disable { api, id } => {
            patch_subscriber(json_mode, &api, &id, json!({"active": false})).await
        }
        SubscriberCommand::RotateSecret { api, id, secret } => {
            let body = secret
                .map(|s| json!({"secret": s}))
                .unwrap_or_else(|| json!({}));
            let out = api
                .client()?
                .call(
                    Method::POST,
                    &format!("/v1/subscribers/{id}/rotate-secret"),
                    Some(&body),
                    &[],
                )
                .await?;
            if json_mode {
                println!("{out}");
            } else {
                println!("secret  {}   (shown only now)", field(&out, "secret"));
                println!(
                    "the previous secret keeps signing until {}",
                    field(&out, "previous_secret_expires_at")
                );
            }
            Ok(())
        }
        SubscriberCommand::Test { api, id } => {
            let out = api
                .client()?
                .call(
                    Method::POST,
                    &format!("/v1/subscribers/{id}/test"),
                    Some(&json!({})),
                    &[],
                )
                .await?;
            if json_mode {
                println!("{out}");
            } else {
                println!(
                    "sent {} ({}) to {id}",
                    field(&out, "id"),
                    field(&out, "type")
                );
            }
            Ok(())
        }
        SubscriberCommand::Recover {
            api,
            id,
            since,
            until,
        } => {
            let client = api.client()?;
            let mut body = json!({"since": since});
            if let Some(u) = until {
                body["until"] = json!(u);
            }
            let mut progress = Progress::new(&format!("recovering {id}"), None);
            let (mut recovered, mut skipped) = (0u64, 0u64);
            // Each call does a bounded slice of the work; `complete` says when it is all done.
            for _ in 0..10_000 {
                let out = client
                    .call(
                        Method::POST,
                        &format!("/v1/subscribers/{id}/recover"),
                        Some(&body),
                        &[],
                    )
                    .await?;
                let (r, k) = (
                    out["recovered"].as_u64().unwrap_or(0),
                    out["skipped"].as_u64().unwrap_or(0),
                );
                recovered += r;
                skipped += k;
                progress.advance(usize::try_from(r + k).unwrap_or(usize::MAX));
                if out["complete"] != false {
                    break;
                }
            }
            progress.finish();
            if json_mode {
                println!("{}", json!({"recovered": recovered, "skipped": skipped}));
            } else {
                println!("recovered {recovered} deliveries ({skipped} no longer failed, skipped)");
            }
            Ok(())
        }
        SubscriberCommand::Import { api, file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("reading {}: {e}", file.display())))?;
            let plans = skyhook_cli::import::plan(&text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            if dry_run {
                for (i, (endpoint, plan)) in plans.iter().enumerate() {
                    let action = match plan {
                        Plan::Create { .. } => "create".to_string(),
                        Plan::Update { id, .. } => format!("update {id}"),
                    };
                    println!("{:>3}  {action:<36}  {}", i + 1, endpoint.url);
                }
                return Ok(());
            }
            import(json_mode, &api.client()?, plans).await
        }
    }
}

async fn patch_subscriber(
    json_mode: bool,
    api: &ApiArgs,
    id: &str,
    body: Value,
) -> Result<(), CliError> {
    let out = api
        .client()?
        .call(
            Method::PATCH,
            &format!("/v1/subscribers/{id}"),
            Some(&body),
            &[],
        )
        .await?;
    print_value(json_mode, &out);
    Ok(())
}

/// Applies an import plan entry by entry; a failed entry is reported and the rest go on.
async fn import(
    json_mode: bool,
    client: &ApiClient,
    plans: Vec<(skyhook_cli::import::Endpoint, Plan)>,
) -> Result<(), CliError> {
    let mut progress = Progress::new("importing", Some(plans.len()));
    let mut results = Vec::new();
    for (endpoint, plan) in plans {
        let result = match plan {
            Plan::Create { body, enabled } => {
                match client
                    .call(Method::POST, "/v1/subscribers", Some(&body), &[])
                    .await
                {
                    Ok(created) => {
                        let id = field(&created, "id").to_string();
                        let disabled = if enabled {
                            Ok(())
                        } else {
                            client
                                .call(
                                    Method::PATCH,
                                    &format!("/v1/subscribers/{id}"),
                                    Some(&json!({"active": false})),
                                    &[],
                                )
                                .await
                                .map(|_| ())
                        };
                        match disabled {
                            Ok(()) => {
                                json!({"url": endpoint.url, "action": "created", "id": id, "secret": created["secret"]})
                            }
                            Err(e) => {
                                json!({"url": endpoint.url, "action": "created", "id": id, "secret": created["secret"], "error": format!("could not disable it: {e}")})
                            }
                        }
                    }
                    Err(e) => {
                        json!({"url": endpoint.url, "action": "failed", "error": e.to_string()})
                    }
                }
            }
            Plan::Update { id, body } => {
                let note = endpoint
                    .secret
                    .as_ref()
                    .map(|_| "secret ignored for an existing subscriber; use rotate-secret");
                match client
                    .call(
                        Method::PATCH,
                        &format!("/v1/subscribers/{id}"),
                        Some(&body),
                        &[],
                    )
                    .await
                {
                    Ok(_) => {
                        json!({"url": endpoint.url, "action": "updated", "id": id, "note": note})
                    }
                    Err(e) => {
                        json!({"url": endpoint.url, "action": "failed", "id": id, "error": e.to_string()})
                    }
                }
            }
        };
        results.push(result);
        progress.advance(1);
    }
    progress.finish();
    let failed = results
        .iter()
        .filter(|r| r["action"] == "failed" || r.get("error").is_some_and(|e| !e.is_null()))
        .count();
    if json_mode {
        println!("{}", json!({"results": results}));
    } else {
        for r in &results {
            println!(
                "{:<8}  {:<30}  {}{}{}",
                field(r, "action"),
                field(r, "id"),
                field(r, "url"),
                r["secret"]
                    .as_str()
                    .map(|s| format!("  secret {s}"))
                    .unwrap_or_default(),
                r["error"]
                    .as_str()
                    .map(|e| format!("  error: {e}"))
                    .unwrap_or_default(),
            );
        }
    }
    if failed > 0 {
        Err(CliError::Failed(format!(
            "{failed} of {} entries failed",
            results.len()
        )))
    } else {
        Ok(())
    }
}

async fn deliveries(json_mode: bool, args: DeliveriesArgs) -> Result<(), CliError> {
    let (rows, cursor) = list_pages(
        &args.api.client()?,
        "/v1/deliveries",
        &[
            ("subscriber_id", args.subscriber),
            ("event_id", args.event),
            ("outcome", args.outcome),
            ("since", args.since),
            ("until", args.until),
        ],
        args.limit,
        args.cursor,
        args.all,
    )
    .await?;
    print_rows(json_mode, &rows, &cursor, |d| {
        format!(
            "{}  {}  {}  #{}  {:<7}  {}  {}ms{}",
            field(d, "started_at"),
            field(d, "event_id"),
            field(d, "subscriber_id"),
            d["attempt"],
            field(d, "outcome"),
            d["status_code"]
                .as_u64()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            d["latency_ms"],
            d["error"]
                .as_str()
                .map(|e| format!("  {e}"))
                .unwrap_or_default(),
        )
    });
    Ok(())
}

async fn dlq(json_mode: bool, cmd: DlqCommand) -> Result<(), CliError> {
    match cmd {
        DlqCommand::List {
            api,
            subscriber,
            limit,
            all,
        } => {
            let (rows, cursor) = list_pages(
                &api.client()?,
                "/v1/dlq",
                &[("subscriber_id", subscriber)],
                limit,
                None,
                all,
            )
            .await?;
            print_rows(json_mode, &rows, &cursor, |d| {
                format!(
                    "{}  {}  {}  {}  attempts {}  {}",
                    field(d, "dead_at"),
                    field(d, "event_id"),
                    field(d, "subscriber_id"),
                    field(d, "event_type"),
                    d["attempts"],
                    field(d, "reason"),
                )
            });
            Ok(())
        }
        DlqCommand::Redrive { api, subscriber } => {
            let client = api.client()?;
            // Count first, so the bar has a total.
            let (dead, _) = list_pages(
                &client,
                "/v1/dlq",
                &[("subscriber_id", subscriber.clone())],
                250,
                None,
                true,
            )
            .await?;
            let body = match &subscriber {
                Some(id) => json!({"subscriber_id": id}),
                None => json!({}),
            };
            let mut progress = Progress::new("redriving", Some(dead.len()));
            let (mut redriven, mut dropped) = (0u64, 0u64);
            for _ in 0..10_000 {
                let out = client
                    .call(Method::POST, "/v1/dlq/redrive", Some(&body), &[])
                    .await?;
                let (r, d) = (
                    out["redriven"].as_u64().unwrap_or(0),
                    out["dropped"].as_u64().unwrap_or(0),
                );
                redriven += r;
                dropped += d;
                progress.advance(usize::try_from(r + d).unwrap_or(usize::MAX));
                if out["complete"] != false {
                    break;
                }
            }
            progress.finish();
            if json_mode {
                println!("{}", json!({"redriven": redriven, "dropped": dropped}));
            } else {
                println!("redriven {redriven}; {dropped} already delivered or recovered, removed");
            }
            Ok(())
        }
    }
}

async fn api_keys(json_mode: bool, cmd: ApiKeyCommand) -> Result<(), CliError> {
    match cmd {
        ApiKeyCommand::Create {
            api,
            role,
            tenant,
            description,
        } => {
            let mut body = json!({"role": role});
            if let Some(t) = tenant {
                body["tenant"] = json!(t);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let out = api
                .client()?
                .call(Method::POST, "/v1/api-keys", Some(&body), &[])
                .await?;
            if json_mode {
                println!("{out}");
            } else {
                println!("id      {}", field(&out, "id"));
                println!("tenant  {}", field(&out, "tenant"));
                println!("role    {}", field(&out, "role"));
                println!("key     {}   (shown only now)", field(&out, "key"));
            }
            Ok(())
        }
        ApiKeyCommand::List { api } => {
            let out = api
                .client()?
                .call(Method::GET, "/v1/api-keys", None, &[])
                .await?;
            if json_mode {
                println!("{out}");
            } else {
                for k in out["data"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "{}  {:<10}  {:<9}  {}  {}",
                        field(&k, "id"),
                        field(&k, "tenant"),
                        field(&k, "role"),
                        field(&k, "created_at"),
                        field(&k, "description"),
                    );
                }
            }
            Ok(())
        }
        ApiKeyCommand::Delete { api, id } => {
            api.client()?
                .call(Method::DELETE, &format!("/v1/api-keys/{id}"), None, &[])
                .await?;
            if !json_mode {
                println!("deleted {id}");
            }
            Ok(())
        }
    }
}

async fn events(json_mode: bool, cmd: EventCommand) -> Result<(), CliError> {
    match cmd {
        EventCommand::Send {
            api,
            event_type,
            data,
            data_file,
            idempotency_key,
            subscribers,
            correlation_id,
        } => {
            let raw = match (data, data_file) {
                (Some(d), _) => d,
                (None, Some(f)) if f.as_os_str() == "-" => {
                    std::io::read_to_string(std::io::stdin())
                        .map_err(|e| CliError::Usage(format!("reading stdin: {e}")))?
                }
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map_err(|e| CliError::Usage(format!("reading {}: {e}", f.display())))?,
                (None, None) => "{}".to_string(),
            };
            let data: Value = serde_json::from_str(&raw)
                .map_err(|e| CliError::Usage(format!("the event data is not JSON: {e}")))?;
            let mut body = json!({"type": event_type, "data": data});
            if !subscribers.is_empty() {
                body["subscriber_ids"] = json!(subscribers);
            }
            let mut headers = Vec::new();
            if let Some(k) = &idempotency_key {
                headers.push(("idempotency-key", k.as_str()));
            }
            if let Some(c) = &correlation_id {
                headers.push(("x-correlation-id", c.as_str()));
            }
            let out = api
                .client()?
                .call(Method::POST, "/v1/events", Some(&body), &headers)
                .await?;
            if json_mode {
                println!("{out}");
            } else {
                println!(
                    "{}  {}  to {} subscriber(s)",
                    out["id"].as_str().unwrap_or(""),
                    out["type"].as_str().unwrap_or(""),
                    out["subscribers"]
                );
            }
            Ok(())
        }
        EventCommand::Show { api, id } => {
            let e = api
                .client()?
                .call(Method::GET, &format!("/v1/events/{id}"), None, &[])
                .await?;
            if json_mode {
                println!("{e}");
            } else {
                println!(
                    "{}  {}  {}",
                    e["id"].as_str().unwrap_or(""),
                    e["type"].as_str().unwrap_or(""),
                    e["timestamp"].as_str().unwrap_or("")
                );
                for d in e["deliveries"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "  {}  {:<9}  attempts {}  {}{}",
                        d["subscriber_id"].as_str().unwrap_or(""),
                        d["status"].as_str().unwrap_or(""),
                        d["attempts"],
                        d["last_status_code"]
                            .as_u64()
                            .map(|c| format!("HTTP {c}"))
                            .unwrap_or_default(),
                        d["last_error"]
                            .as_str()
                            .map(|e| format!("  {e}"))
                            .unwrap_or_default(),
                    );
                }
            }
            Ok(())
        }
    }
}

async fn listen(args: ListenArgs) -> Result<(), CliError> {
    let secrets = parse_secrets(&args.secrets)?;
    if !args.path.starts_with('/') {
        return Err(CliError::Usage("--path must start with /".into()));
    }
    let client = if args.subscribe.is_empty() {
        None
    } else {
        Some(args.api.client()?)
    };
    let listener = Listener::start(ListenOptions {
        addr: SocketAddr::new(args.host, args.port),
        secrets,
        status: args.status,
        save_dir: args.save,
        exit_after: args.exit_after,
    })
    .await
    .map_err(|e| CliError::Usage(format!("cannot listen on {}:{}: {e}", args.host, args.port)))?;
    let url = format!("http://{}{}", listener.addr, args.path);
    let mut subscription = None;
    if let Some(client) = &client {
        let created = client
            .call(
                Method::POST,
                "/v1/subscribers",
                Some(&json!({"url": url, "event_types": args.subscribe, "description": "skyhook listen"})),
                &[],
            )
            .await?;
        let secret = created["secret"]
            .as_str()
            .and_then(|s| SigningSecret::parse(s).ok())
            .ok_or_else(|| CliError::Failed("the API returned no usable secret".into()))?;
        listener.add_secret(secret).await;
        let id = created["id"].as_str().unwrap_or("").to_string();
        println!(
            "Subscribed {id} to {}; deliveries are verified with its secret.",
            args.subscribe.join(", ")
        );
        subscription = Some(id);
    }
    println!("Listening on {url} (Ctrl-C to stop)");
    listener.wait(interrupted()).await;
    if let (Some(client), Some(id)) = (&client, subscription) {
        match client
            .call(Method::DELETE, &format!("/v1/subscribers/{id}"), None, &[])
            .await
        {
            Ok(_) => println!("Unsubscribed {id}."),
            Err(e) => eprintln!("could not delete subscriber {id}: {e}"),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}
