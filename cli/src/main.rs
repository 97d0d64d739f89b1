//! The `skyhook` command: `skyhook local` runs the whole system on one machine; the operator
//! commands talk to Skyhook's HTTP API; `listen` and `verify` check signatures locally.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use skyhook_cli::client::{API_KEY, API_URL, ApiClient, CliError};
use skyhook_cli::listen::{ListenOptions, Listener, Verdict, describe, read_saved, verify_request};
use skyhook_cli::local::{LocalConfig, banner};
use skyhook_shared::config::ProcessEnv;
use skyhook_shared::secret::SigningSecret;

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
            skyhook_shared::telemetry::init();
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
        Command::Listen(args) => listen(args).await,
        Command::Verify(args) => {
            let secrets = parse_secrets(&args.secrets)?;
            let req = read_saved(&args.file).map_err(CliError::Usage)?;
            let verdict = verify_request(
                &req,
                &secrets,
                chrono::Utc::now().timestamp(),
                (!args.ignore_age).then_some(skyhook_shared::signing::DEFAULT_TOLERANCE_SECS),
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
        } => {
            let mut body = json!({"url": url, "event_types": event_types});
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
            let client = api.client()?;
            let mut cursor = cursor;
            let mut rows = Vec::new();
            loop {
                let mut path = format!("/v1/subscribers?limit={limit}");
                if let Some(a) = active {
                    path.push_str(&format!("&active={a}"));
                }
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = client.call(Method::GET, &path, None, &[]).await?;
                rows.extend(page["data"].as_array().cloned().unwrap_or_default());
                cursor = page["next_cursor"].as_str().map(str::to_string);
                if !all || cursor.is_none() {
                    break;
                }
            }
            if json_mode {
                println!("{}", json!({"data": rows, "next_cursor": cursor}));
            } else {
                for s in &rows {
                    println!(
                        "{}  {:<8}  {}  [{}]",
                        s["id"].as_str().unwrap_or(""),
                        if s["active"] == true {
                            "active"
                        } else {
                            "inactive"
                        },
                        s["url"].as_str().unwrap_or(""),
                        s["event_types"]
                            .as_array()
                            .map(|a| a
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", "))
                            .unwrap_or_default()
                    );
                }
                if let Some(c) = &cursor {
                    println!("more: --cursor {c}");
                }
            }
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
