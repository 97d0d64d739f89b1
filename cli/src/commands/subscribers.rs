//! `skyhook subscribers …`: create, list, show, change, delete, rotate, test, recover and
//! import subscribers.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use reqwest::Method;
use serde::Serialize;
use serde_json::json;

use skyhook_api_types::Cursor;
use skyhook_api_types::events::PublishReceiptView;
use skyhook_api_types::query::SubscribersQuery;
use skyhook_api_types::subscribers::{
    CreateSubscriber, Recover, RecoverResult, RotateSecret, RotatedSecret, SubscriberView,
    TransformPreview, TransformPreviewResult, UpdateSubscriber,
};
use skyhook_cli::client::{ApiClient, CliError};
use skyhook_cli::import::{Endpoint, Plan};
use skyhook_cli::progress::Progress;

use super::args::{ApiArgs, parse_header};
use super::limit;
use super::output::{list_pages, print_rows, print_value, until_complete};

#[derive(Subcommand)]
pub enum SubscriberCommand {
    /// Create a subscriber; prints its id and signing secret (shown only this once).
    Create(CreateArgs),
    /// List subscribers, a page at a time or all of them.
    List(ListArgs),
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
    Update(UpdateArgs),
    /// Show the body a delivery of a sample event would send, through the subscriber's
    /// transform (or the one given, which is not saved).
    PreviewTransform(PreviewTransformArgs),
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

/// The flags of `subscribers create`.
#[derive(Args)]
pub struct CreateArgs {
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
}

/// The flags of `subscribers list`.
#[derive(Args)]
pub struct ListArgs {
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
}

/// The flags of `subscribers update`: each one given changes that setting.
#[derive(Args)]
pub struct UpdateArgs {
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
}

/// The flags of `subscribers preview-transform`.
#[derive(Args)]
pub struct PreviewTransformArgs {
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

/// Hands each subcommand to its function.
pub async fn run(json_mode: bool, cmd: SubscriberCommand) -> Result<(), CliError> {
    match cmd {
        SubscriberCommand::Create(args) => create(json_mode, args).await,
        SubscriberCommand::List(args) => list(json_mode, args).await,
        SubscriberCommand::Get { api, id } => get(json_mode, &api, &id).await,
        SubscriberCommand::Delete { api, id } => delete(json_mode, &api, &id).await,
        SubscriberCommand::Update(args) => update(json_mode, args).await,
        SubscriberCommand::PreviewTransform(args) => preview_transform(json_mode, args).await,
        SubscriberCommand::Enable { api, id } => {
            patch(json_mode, &api, &id, &UpdateSubscriber::active(true)).await
        }
        SubscriberCommand::Disable { api, id } => {
            patch(json_mode, &api, &id, &UpdateSubscriber::active(false)).await
        }
        SubscriberCommand::RotateSecret { api, id, secret } => {
            rotate_secret(json_mode, &api.client()?, &id, &RotateSecret { secret }).await
        }
        SubscriberCommand::Test { api, id } => test(json_mode, &api, &id).await,
        SubscriberCommand::Recover {
            api,
            id,
            since,
            until,
        } => {
            let body = Recover {
                since: Some(since),
                until,
            };
            recover(json_mode, &api.client()?, &id, &body).await
        }
        SubscriberCommand::Import { api, file, dry_run } => {
            import_file(json_mode, &api, &file, dry_run).await
        }
    }
}

/// The program of `--transform`, or read from `--transform-file` (`-`: standard input).
pub(crate) fn read_transform(args: TransformArgs) -> Result<Option<String>, CliError> {
    read_program(args.transform, args.transform_file)
}

/// The expression of `--filter`, or read from `--filter-file` (`-`: standard input).
pub(crate) fn read_filter(args: FilterArgs) -> Result<Option<String>, CliError> {
    read_program(args.filter, args.filter_file)
}

fn read_program(inline: Option<String>, file: Option<PathBuf>) -> Result<Option<String>, CliError> {
    match (inline, file) {
        (Some(t), _) => Ok(Some(t)),
        (None, Some(f)) if f.as_os_str() == "-" => std::io::read_to_string(std::io::stdin())
            .map(Some)
            .map_err(|e| CliError::Usage(format!("reading stdin: {e}"))),
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map(Some)
            .map_err(|e| CliError::Usage(format!("reading {}: {e}", f.display()))),
        (None, None) => Ok(None),
    }
}

/// `subscribers create`: prints the new subscriber's id and its secret.
async fn create(json_mode: bool, args: CreateArgs) -> Result<(), CliError> {
    let body = CreateSubscriber {
        url: args.url,
        event_types: args.event_types,
        description: args.description,
        secret: args.secret,
        headers: (!args.headers.is_empty()).then(|| args.headers.into_iter().collect()),
        signature_scheme: args.signature_scheme,
        max_concurrency: args.max_concurrency,
        rate_limit: args.rate_limit,
        transform: read_transform(args.transform)?,
        filter: read_filter(args.filter)?,
    };
    let created = args
        .api
        .client()?
        .send::<_, SubscriberView>(Method::POST, "/v1/subscribers", Some(&body), &[])
        .await?;
    if json_mode {
        println!("{}", created.json());
    } else {
        let s = &created.body;
        println!("id      {}", s.id);
        println!("url     {}", s.url);
        println!(
            "secret  {}   (shown only now)",
            s.secret.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// `subscribers list`: one page, or with `--all` every page.
async fn list(json_mode: bool, args: ListArgs) -> Result<(), CliError> {
    let client = args.api.client()?;
    let query = SubscribersQuery {
        limit: Some(limit(args.limit)?),
        cursor: args.cursor.map(Cursor),
        active: args.active,
    };
    let rows = list_pages::<SubscriberView, _>(&client, "/v1/subscribers", query, args.all).await?;
    print_rows(json_mode, &rows, |s| {
        format!(
            "{}  {:<8}  {}  [{}]",
            s.id,
            if s.active { "active" } else { "inactive" },
            s.url,
            s.event_types.join(", ")
        )
    });
    Ok(())
}

/// `subscribers get`.
async fn get(json_mode: bool, api: &ApiArgs, id: &str) -> Result<(), CliError> {
    let s = api
        .client()?
        .get::<SubscriberView>(&format!("/v1/subscribers/{id}"), &())
        .await?;
    print_value(json_mode, &s.json());
    Ok(())
}

/// `subscribers delete`.
async fn delete(json_mode: bool, api: &ApiArgs, id: &str) -> Result<(), CliError> {
    api.client()?
        .delete(&format!("/v1/subscribers/{id}"))
        .await?;
    if !json_mode {
        println!("deleted {id}");
    }
    Ok(())
}

/// `subscribers update`: a `PATCH` of the settings given; refused when none is.
async fn update(json_mode: bool, args: UpdateArgs) -> Result<(), CliError> {
    let transform = read_transform(args.transform)?;
    let filter = read_filter(args.filter)?;
    let body = UpdateSubscriber {
        url: args.url,
        event_types: (!args.event_types.is_empty()).then_some(args.event_types),
        active: args.active,
        description: args.description.map(Some),
        headers: if args.clear_headers {
            Some(None)
        } else {
            (!args.headers.is_empty()).then(|| Some(args.headers.into_iter().collect()))
        },
        signature_scheme: args.signature_scheme,
        max_concurrency: args.max_concurrency,
        rate_limit: match args.rate_limit {
            Some(n) => Some(Some(n)),
            None => args.no_rate_limit.then_some(None),
        },
        transform: match transform {
            Some(t) => Some(Some(t)),
            None => args.no_transform.then_some(None),
        },
        filter: match filter {
            Some(f) => Some(Some(f)),
            None => args.no_filter.then_some(None),
        },
    };
    if body.fields().is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give at least one option".into(),
        ));
    }
    patch(json_mode, &args.api, &args.id, &body).await
}

/// `subscribers preview-transform`: the body a sample event would be sent as.
async fn preview_transform(json_mode: bool, args: PreviewTransformArgs) -> Result<(), CliError> {
    let data: serde_json::Value = serde_json::from_str(&args.data)
        .map_err(|e| CliError::Usage(format!("--data is not JSON: {e}")))?;
    let body = TransformPreview {
        event_type: args.event_type,
        data,
        timestamp: None,
        transform: read_transform(args.transform)?,
    };
    let out = args
        .api
        .client()?
        .send::<_, TransformPreviewResult>(
            Method::POST,
            &format!("/v1/subscribers/{}/transform/preview", args.id),
            Some(&body),
            &[],
        )
        .await?;
    print_value(json_mode, &out.json());
    Ok(())
}

/// `subscribers test`: a `skyhook.test` event to this subscriber only.
async fn test(json_mode: bool, api: &ApiArgs, id: &str) -> Result<(), CliError> {
    // The route takes no body: the test event is made by the API.
    let out = api
        .client()?
        .send::<(), PublishReceiptView>(
            Method::POST,
            &format!("/v1/subscribers/{id}/test"),
            None,
            &[],
        )
        .await?;
    if json_mode {
        println!("{}", out.json());
    } else {
        println!("sent {} ({}) to {id}", out.body.id, out.body.event_type);
    }
    Ok(())
}

/// `PATCH /v1/subscribers/{id}`; prints the subscriber as it now is.
async fn patch(
    json_mode: bool,
    api: &ApiArgs,
    id: &str,
    body: &UpdateSubscriber,
) -> Result<(), CliError> {
    let out = api
        .client()?
        .send::<_, SubscriberView>(
            Method::PATCH,
            &format!("/v1/subscribers/{id}"),
            Some(body),
            &[],
        )
        .await?;
    print_value(json_mode, &out.json());
    Ok(())
}

async fn rotate_secret(
    json_mode: bool,
    client: &ApiClient,
    id: &str,
    body: &RotateSecret,
) -> Result<(), CliError> {
    let out = client
        .send::<_, RotatedSecret>(
            Method::POST,
            &format!("/v1/subscribers/{id}/rotate-secret"),
            Some(body),
            &[],
        )
        .await?;
    if json_mode {
        println!("{}", out.json());
    } else {
        println!("secret  {}   (shown only now)", out.body.secret);
        println!(
            "the previous secret keeps signing until {}",
            out.body.previous_secret_expires_at.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// Calls the recover route until it reports the window done, adding up what each call did.
async fn recover(
    json_mode: bool,
    client: &ApiClient,
    id: &str,
    body: &Recover,
) -> Result<(), CliError> {
    let path = format!("/v1/subscribers/{id}/recover");
    let mut progress = Progress::new(&format!("recovering {id}"), None);
    let (recovered, skipped) =
        until_complete(client, &path, body, &mut progress, |out: &RecoverResult| {
            (out.recovered, out.skipped, out.complete)
        })
        .await?;
    if json_mode {
        println!("{}", json!({"recovered": recovered, "skipped": skipped}));
    } else {
        println!("recovered {recovered} deliveries ({skipped} no longer failed, skipped)");
    }
    Ok(())
}

/// `subscribers import`: the whole file is checked first; with `--dry-run` nothing more
/// is done than showing what would be.
async fn import_file(
    json_mode: bool,
    api: &ApiArgs,
    file: &Path,
    dry_run: bool,
) -> Result<(), CliError> {
    let plans = read_plan(file)?;
    if dry_run {
        print_plan(&plans);
        return Ok(());
    }
    import(json_mode, &api.client()?, plans).await
}

/// One line per entry: its number, what would be done, and its URL.
fn print_plan(plans: &[(Endpoint, Plan)]) {
    for (i, (endpoint, plan)) in plans.iter().enumerate() {
        let action = match plan {
            Plan::Create { .. } => "create".to_string(),
            Plan::Update { id, .. } => format!("update {id}"),
        };
        println!("{:>3}  {action:<36}  {}", i + 1, endpoint.url);
    }
}

/// Reads and checks the whole import file before anything is sent.
fn read_plan(file: &Path) -> Result<Vec<(Endpoint, Plan)>, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("reading {}: {e}", file.display())))?;
    skyhook_cli::import::plan(&text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))
}

/// What became of one import entry, as `--json` prints it. `secret` and `note` are present
/// (maybe `null`) exactly for the actions that have them.
#[derive(Serialize)]
struct Imported {
    url: String,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// The created subscriber's secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<Option<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Imported {
    fn new(url: String, action: &'static str) -> Self {
        Imported {
            url,
            action,
            id: None,
            secret: None,
            note: None,
            error: None,
        }
    }

    fn failed(&self) -> bool {
        self.action == "failed" || self.error.is_some()
    }
}

/// Applies an import plan entry by entry; a failed entry is reported and the rest go on.
async fn import(
    json_mode: bool,
    client: &ApiClient,
    plans: Vec<(Endpoint, Plan)>,
) -> Result<(), CliError> {
    let mut progress = Progress::new("importing", Some(plans.len()));
    let mut results = Vec::new();
    for (endpoint, plan) in plans {
        let result = match plan {
            Plan::Create { body, enabled } => {
                import_create(client, endpoint.url, &body, enabled).await
            }
            Plan::Update { id, body } => import_update(client, endpoint, id, &body).await,
        };
        results.push(result);
        progress.advance(1);
    }
    progress.finish();
    let failed = results.iter().filter(|r| r.failed()).count();
    print_imported(json_mode, &results);
    if failed > 0 {
        Err(CliError::Failed(format!(
            "{failed} of {} entries failed",
            results.len()
        )))
    } else {
        Ok(())
    }
}

/// Creates an entry's subscriber, then disables it if the entry is not enabled.
async fn import_create(
    client: &ApiClient,
    url: String,
    body: &CreateSubscriber,
    enabled: bool,
) -> Imported {
    match client
        .send::<_, SubscriberView>(Method::POST, "/v1/subscribers", Some(body), &[])
        .await
    {
        Ok(created) => {
            let created = created.body;
            let disabled = if enabled {
                Ok(())
            } else {
                client
                    .send::<_, SubscriberView>(
                        Method::PATCH,
                        &format!("/v1/subscribers/{}", created.id),
                        Some(&UpdateSubscriber::active(false)),
                        &[],
                    )
                    .await
                    .map(|_| ())
            };
            Imported {
                id: Some(created.id),
                secret: Some(created.secret),
                error: disabled.err().map(|e| format!("could not disable it: {e}")),
                ..Imported::new(url, "created")
            }
        }
        Err(e) => Imported {
            error: Some(e.to_string()),
            ..Imported::new(url, "failed")
        },
    }
}

/// Updates the subscriber an entry names; an entry's secret is not applied to it.
async fn import_update(
    client: &ApiClient,
    endpoint: Endpoint,
    id: String,
    body: &UpdateSubscriber,
) -> Imported {
    let note = endpoint
        .secret
        .as_ref()
        .map(|_| "secret ignored for an existing subscriber; use rotate-secret");
    match client
        .send::<_, SubscriberView>(
            Method::PATCH,
            &format!("/v1/subscribers/{id}"),
            Some(body),
            &[],
        )
        .await
    {
        Ok(_) => Imported {
            id: Some(id),
            note: Some(note),
            ..Imported::new(endpoint.url, "updated")
        },
        Err(e) => Imported {
            id: Some(id),
            error: Some(e.to_string()),
            ..Imported::new(endpoint.url, "failed")
        },
    }
}

/// What became of each entry: `{"results": [...]}` with `--json`, else a line each.
fn print_imported(json_mode: bool, results: &[Imported]) {
    if json_mode {
        println!("{}", json!({"results": results}));
        return;
    }
    for r in results {
        println!(
            "{:<8}  {:<30}  {}{}{}",
            r.action,
            r.id.as_deref().unwrap_or(""),
            r.url,
            r.secret
                .as_ref()
                .and_then(|s| s.as_deref())
                .map(|s| format!("  secret {s}"))
                .unwrap_or_default(),
            r.error
                .as_deref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_results_keep_their_json_shape() {
        let created = Imported {
            id: Some("sub_1".into()),
            secret: Some(None),
            ..Imported::new("https://a.example".into(), "created")
        };
        assert_eq!(
            serde_json::to_string(&created).unwrap(),
            r#"{"url":"https://a.example","action":"created","id":"sub_1","secret":null}"#
        );
        assert!(!created.failed());
        let updated = Imported {
            id: Some("sub_2".into()),
            note: Some(None),
            ..Imported::new("https://b.example".into(), "updated")
        };
        assert_eq!(
            serde_json::to_string(&updated).unwrap(),
            r#"{"url":"https://b.example","action":"updated","id":"sub_2","note":null}"#
        );
        let failed = Imported {
            error: Some("no".into()),
            ..Imported::new("https://c.example".into(), "failed")
        };
        assert_eq!(
            serde_json::to_string(&failed).unwrap(),
            r#"{"url":"https://c.example","action":"failed","error":"no"}"#
        );
        assert!(failed.failed());
    }
}
