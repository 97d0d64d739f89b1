//! `skyhook listen` (a local receiver that verifies what it gets, optionally subscribed for
//! as long as it runs) and `skyhook verify` (the same check on a saved request).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Args;
use reqwest::Method;

use skyhook_api_types::subscribers::{CreateSubscriber, SubscriberView};
use skyhook_cli::client::{ApiClient, CliError};
use skyhook_cli::listen::{ListenOptions, Listener, Verdict, describe, read_saved, verify_request};
use skyhook_domain::secret::SigningSecret;

use super::args::ApiArgs;
use super::interrupted;
use super::subscribers::{FilterArgs, TransformArgs, read_filter, read_transform};

/// The flags of `skyhook listen`.
#[derive(Args)]
pub struct ListenArgs {
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

/// The flags of `skyhook verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Secret `whsec_…` to verify with. Repeatable; any match verifies.
    #[arg(long = "secret", required = true)]
    secrets: Vec<String>,
    /// Skip the ±5 minute timestamp check (the request was saved earlier).
    #[arg(long)]
    ignore_age: bool,
    /// The saved request (`-` for standard input).
    file: PathBuf,
}

fn parse_secrets(raw: &[String]) -> Result<Vec<SigningSecret>, CliError> {
    raw.iter()
        .map(|s| SigningSecret::parse(s).map_err(|e| CliError::Usage(format!("--secret: {e}"))))
        .collect()
}

/// Serves until `--exit-after` is reached or Ctrl-C; with `--subscribe`, subscribed through
/// the API for that long.
pub async fn listen(args: ListenArgs) -> Result<(), CliError> {
    let secrets = parse_secrets(&args.secrets)?;
    check_listen_flags(&args)?;
    let client = if args.subscribe.is_empty() {
        None
    } else {
        Some(args.api.client()?)
    };
    let listener = Listener::start(ListenOptions {
        addr: SocketAddr::new(args.host, args.port),
        secrets,
        status: args.status,
        save_dir: args.save.clone(),
        exit_after: args.exit_after,
    })
    .await
    .map_err(|e| CliError::Usage(format!("cannot listen on {}:{}: {e}", args.host, args.port)))?;
    let url = format!("http://{}{}", listener.addr, args.path);
    let subscription = match &client {
        Some(client) => Some(subscribe(client, &listener, &url, &args).await?),
        None => None,
    };
    println!("Listening on {url} (Ctrl-C to stop)");
    listener.wait(interrupted()).await;
    if let (Some(client), Some(id)) = (&client, subscription) {
        match client.delete(&format!("/v1/subscribers/{id}")).await {
            Ok(()) => println!("Unsubscribed {id}."),
            Err(e) => eprintln!("could not delete subscriber {id}: {e}"),
        }
    }
    Ok(())
}

/// `--path` must be a path, and `--transform`/`--filter` only go with `--subscribe`.
fn check_listen_flags(args: &ListenArgs) -> Result<(), CliError> {
    if !args.path.starts_with('/') {
        return Err(CliError::Usage("--path must start with /".into()));
    }
    let shaped = args.transform.transform.is_some()
        || args.transform.transform_file.is_some()
        || args.filter.filter.is_some()
        || args.filter.filter_file.is_some();
    if shaped && args.subscribe.is_empty() {
        return Err(CliError::Usage(
            "--transform and --filter shape the subscription: give --subscribe too".into(),
        ));
    }
    Ok(())
}

/// Subscribes `url` to `--subscribe`'s event types and verifies with the new subscriber's
/// secret; returns the subscriber's id.
async fn subscribe(
    client: &ApiClient,
    listener: &Listener,
    url: &str,
    args: &ListenArgs,
) -> Result<String, CliError> {
    let body = CreateSubscriber {
        url: url.to_string(),
        event_types: args.subscribe.clone(),
        description: Some("skyhook listen".into()),
        transform: read_transform(args.transform.clone())?,
        filter: read_filter(args.filter.clone())?,
        ..CreateSubscriber::default()
    };
    let created = client
        .send::<_, SubscriberView>(Method::POST, "/v1/subscribers", Some(&body), &[])
        .await?
        .body;
    let secret = created
        .secret
        .as_deref()
        .and_then(|s| SigningSecret::parse(s).ok())
        .ok_or_else(|| CliError::Failed("the API returned no usable secret".into()))?;
    listener.add_secret(secret).await;
    println!(
        "Subscribed {} to {}; deliveries are verified with its secret.",
        created.id,
        args.subscribe.join(", ")
    );
    Ok(created.id)
}

/// Exits 0 when a secret verifies the saved request, 1 when none does.
pub fn verify(args: VerifyArgs) -> Result<(), CliError> {
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
        Verdict::Invalid(e) => Err(CliError::Failed(format!("signature does not verify: {e}"))),
        Verdict::Unchecked => Err(CliError::Usage("no secret given".into())),
    }
}
