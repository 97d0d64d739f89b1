//! `skyhook sources …`: inbound sources, where webhooks from outside arrive, and
//! `send-test`, which signs a sample as the source's sender would and posts it.

use chrono::Utc;
use reqwest::Method;
use serde_json::value::RawValue;

use skyhook_api_types::events::PublishReceiptView;
use skyhook_api_types::query::PageQuery;
use skyhook_api_types::sources::{CreateSource, SourceView, UpdateSource};
use skyhook_cli::client::{ApiClient, CliError};
use skyhook_domain::ids::EventId;
use skyhook_domain::inbound::{Encoding, EventTypeRule, HmacSettings, SourceSecret};

use super::limit;
use super::output::{list_pages, print_rows, print_value};
use crate::{HmacArgs, RuleArgs, SourceCommand};

pub async fn run(json_mode: bool, cmd: SourceCommand) -> Result<(), CliError> {
    match cmd {
        SourceCommand::Create {
            api,
            name,
            verification,
            secret,
            rule,
            hmac,
        } => {
            let body = CreateSource {
                name,
                verification,
                secret,
                event_type: event_type_rule(rule).ok_or_else(|| {
                    CliError::Usage(
                        "give the event type: --type, --type-header or --type-pointer".into(),
                    )
                })?,
                hmac: hmac_settings(hmac)?,
            };
            let out = api
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
                    api.api_url.trim_end_matches('/'),
                    s.inbound_path
                );
                println!(
                    "secret        {}   (shown only now; give it to the sender)",
                    s.secret.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
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
        SourceCommand::Update {
            api,
            id,
            name,
            verification,
            secret,
            rule,
            hmac,
        } => {
            let body = UpdateSource {
                name,
                verification,
                secret,
                event_type: event_type_rule(rule),
                hmac: hmac_settings(hmac)?,
            };
            if body.fields().is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give at least one option".into(),
                ));
            }
            let out = api
                .client()?
                .send::<_, SourceView>(
                    Method::PATCH,
                    &format!("/v1/sources/{id}"),
                    Some(&body),
                    &[],
                )
                .await?;
            print_value(json_mode, &out.json());
            Ok(())
        }
        SourceCommand::Delete { api, id } => {
            api.client()?.delete(&format!("/v1/sources/{id}")).await?;
            if !json_mode {
                println!("deleted {id}");
            }
            Ok(())
        }
        SourceCommand::SendTest {
            api,
            id,
            secret,
            data,
            headers,
        } => {
            let client = api.client()?;
            let source = client
                .get::<SourceView>(&format!("/v1/sources/{id}"), &())
                .await?
                .body;
            send_test(json_mode, &client, &source, &secret, &data, &headers).await
        }
    }
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
