//! `skyhook sources …`: inbound sources, where webhooks from outside arrive, and
//! `send-test`, which signs a sample as the source's sender would and posts it.

use chrono::Utc;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::value::RawValue;

use skyhook_api_types::events::PublishReceiptView;
use skyhook_api_types::query::PageQuery;
use skyhook_api_types::sources::{CreateSource, SourceView, UpdateSource};
use skyhook_cli::client::{ApiClient, CliError};
use skyhook_domain::ids::EventId;
use skyhook_domain::inbound::{Encoding, EventTypeRule, HmacSettings, SourceSecret};

use super::args::{ApiArgs, parse_header};
use super::limit;
use super::output::{list_pages, print_rows, print_value};

#[derive(Subcommand)]
pub enum SourceCommand {
    /// Create a source; prints its inbound URL and its secret (shown only this once).
    Create(CreateArgs),
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
    Update(UpdateArgs),
    /// Delete a source and its secret; its inbound URL stops at once.
    Delete {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Sign a sample as the source's sender would (its scheme, now, a fresh message id) and
    /// post it to the source's inbound URL.
    SendTest(SendTestArgs),
}

/// The flags of `sources create`.
#[derive(Args)]
pub struct CreateArgs {
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
}

/// The flags of `sources update`: each one given changes that setting.
#[derive(Args)]
pub struct UpdateArgs {
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
}

/// The flags of `sources send-test`.
#[derive(Args)]
pub struct SendTestArgs {
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

/// Hands each subcommand to its function.
pub async fn run(json_mode: bool, cmd: SourceCommand) -> Result<(), CliError> {
    match cmd {
        SourceCommand::Create(args) => create(json_mode, args).await,
        SourceCommand::List {
            api,
            limit: n,
            cursor,
            all,
        } => {
            let query = PageQuery {
                limit: Some(limit(n)?),
                cursor: cursor.map(skyhook_api_types::Cursor),
            };
            let rows =
                list_pages::<SourceView, _>(&api.client()?, "/v1/sources", query, all).await?;
            print_rows(json_mode, &rows, |s| {
                format!("{}  {:<17}  {}", s.id, s.verification.as_str(), s.name)
            });
            Ok(())
        }
        SourceCommand::Get { api, id } => {
            let s = api
                .client()?
                .get::<SourceView>(&format!("/v1/sources/{id}"), &())
                .await?;
            print_value(json_mode, &s.json());
            Ok(())
        }
        SourceCommand::Update(args) => update(json_mode, args).await,
        SourceCommand::Delete { api, id } => {
            api.client()?.delete(&format!("/v1/sources/{id}")).await?;
            if !json_mode {
                println!("deleted {id}");
            }
            Ok(())
        }
        SourceCommand::SendTest(args) => {
            let client = args.api.client()?;
            let source = client
                .get::<SourceView>(&format!("/v1/sources/{}", args.id), &())
                .await?
                .body;
            send_test(
                json_mode,
                &client,
                &source,
                &args.secret,
                &args.data,
                &args.headers,
            )
            .await
        }
    }
}

/// `sources create`: prints the source's inbound URL and its secret.
async fn create(json_mode: bool, args: CreateArgs) -> Result<(), CliError> {
    let body = CreateSource {
        name: args.name,
        verification: args.verification,
        secret: args.secret,
        event_type: event_type_rule(args.rule).ok_or_else(|| {
            CliError::Usage("give the event type: --type, --type-header or --type-pointer".into())
        })?,
        hmac: hmac_settings(args.hmac)?,
    };
    let out = args
        .api
        .client()?
        .send::<_, SourceView>(Method::POST, "/v1/sources", Some(&body), &[])
        .await?;
    if json_mode {
        println!("{}", out.json());
    } else {
        let s = &out.body;
        println!("id            {}", s.id);
        println!("name          {}", s.name);
        println!("verification  {}", s.verification.as_str());
        println!(
            "inbound URL   {}{}",
            args.api.api_url.trim_end_matches('/'),
            s.inbound_path
        );
        println!(
            "secret        {}   (shown only now; give it to the sender)",
            s.secret.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// `sources update`: a `PATCH` of the settings given; refused when none is.
async fn update(json_mode: bool, args: UpdateArgs) -> Result<(), CliError> {
    let body = UpdateSource {
        name: args.name,
        verification: args.verification,
        secret: args.secret,
        event_type: event_type_rule(args.rule),
        hmac: hmac_settings(args.hmac)?,
    };
    if body.fields().is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give at least one option".into(),
        ));
    }
    let out = args
        .api
        .client()?
        .send::<_, SourceView>(
            Method::PATCH,
            &format!("/v1/sources/{}", args.id),
            Some(&body),
            &[],
        )
        .await?;
    print_value(json_mode, &out.json());
    Ok(())
}

/// Signs `data` as the source's sender does (its scheme, now, a fresh message id) and posts
/// it to the source's inbound URL.
async fn send_test(
    json_mode: bool,
    client: &ApiClient,
    source: &SourceView,
    secret: &str,
    data: &str,
    extra: &[(String, String)],
) -> Result<(), CliError> {
    let secret = SourceSecret::parse(source.verification, secret)
        .map_err(|e| CliError::Usage(format!("--secret: {e}")))?;
    let body: Box<RawValue> = serde_json::from_str(data)
        .map_err(|e| CliError::Usage(format!("--data is not JSON: {e}")))?;
    let message_id = format!("msg_{}", &EventId::new().as_str()[4..]);
    let mut headers = skyhook_domain::inbound::sign_as_sender(
        source.verification,
        source.hmac.as_ref(),
        &secret,
        &message_id,
        body.get().as_bytes(),
        Utc::now(),
    );
    headers.extend(extra.iter().cloned());
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = client
        .send::<_, PublishReceiptView>(Method::POST, &source.inbound_path, Some(&body), &pairs)
        .await?;
    if json_mode {
        println!("{}", out.json());
    } else {
        let r = &out.body;
        println!(
            "accepted: event {} ({}) to {} subscriber(s)",
            r.id, r.event_type, r.subscribers
        );
    }
    Ok(())
}

/// The rule the flags give, if any: exactly one of `--type`, `--type-header`,
/// `--type-pointer` (clap enforces it), with `--type-prefix`.
fn event_type_rule(args: RuleArgs) -> Option<EventTypeRule> {
    let rule = EventTypeRule {
        fixed: args.type_fixed,
        header: args.type_header,
        pointer: args.type_pointer,
        prefix: args.type_prefix,
    };
    (rule != EventTypeRule::default()).then_some(rule)
}

fn hmac_settings(args: HmacArgs) -> Result<Option<HmacSettings>, CliError> {
    let Some(header) = args.hmac_header else {
        return if args.hmac_prefix.is_some() || args.hmac_encoding.is_some() {
            Err(CliError::Usage(
                "--hmac-prefix and --hmac-encoding go with --hmac-header".into(),
            ))
        } else {
            Ok(None)
        };
    };
    let encoding = match args.hmac_encoding.as_deref().unwrap_or("hex") {
        "hex" => Encoding::Hex,
        "base64" => Encoding::Base64,
        other => {
            return Err(CliError::Usage(format!(
                "--hmac-encoding must be hex or base64, not {other:?}"
            )));
        }
    };
    Ok(Some(HmacSettings {
        header,
        prefix: args.hmac_prefix.unwrap_or_default(),
        encoding,
    }))
}
