//! `skyhook subscribers …`: create, list, show, change, delete, rotate, test, recover and
//! import subscribers.

use std::path::Path;

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

use super::limit;
use super::output::{list_pages, print_rows, print_value, until_complete};
use crate::{ApiArgs, SubscriberCommand};

pub async fn run(json_mode: bool, cmd: SubscriberCommand) -> Result<(), CliError> {
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
            transform,
            filter,
        } => {
            let body = CreateSubscriber {
                url,
                event_types,
                description,
                secret,
                headers: (!headers.is_empty()).then(|| headers.into_iter().collect()),
                signature_scheme,
                max_concurrency,
                rate_limit,
                transform: read_transform(transform)?,
                filter: read_filter(filter)?,
            };
            create(json_mode, &api.client()?, &body).await
        }
        SubscriberCommand::List {
            api,
            limit: n,
            active,
            cursor,
            all,
        } => {
            let client = api.client()?;
            let query = SubscribersQuery {
                limit: Some(limit(n)?),
                cursor: cursor.map(Cursor),
                active,
            };
            list(json_mode, &client, query, all).await
        }
        SubscriberCommand::Get { api, id } => {
            let s = api
                .client()?
                .get::<SubscriberView>(&format!("/v1/subscribers/{id}"), &())
                .await?;
            print_value(json_mode, &s.json());
            Ok(())
        }
        SubscriberCommand::Delete { api, id } => {
            api.client()?
                .delete(&format!("/v1/subscribers/{id}"))
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
            transform,
            no_transform,
            filter,
            no_filter,
        } => {
            let transform = read_transform(transform)?;
            let filter = read_filter(filter)?;
            let body = UpdateSubscriber {
                url,
                event_types: (!event_types.is_empty()).then_some(event_types),
                active,
                description: description.map(Some),
                headers: if clear_headers {
                    Some(None)
                } else {
                    (!headers.is_empty()).then(|| Some(headers.into_iter().collect()))
                },
                signature_scheme,
                max_concurrency,
                rate_limit: match rate_limit {
                    Some(n) => Some(Some(n)),
                    None => no_rate_limit.then_some(None),
                },
                transform: match transform {
                    Some(t) => Some(Some(t)),
                    None => no_transform.then_some(None),
                },
                filter: match filter {
                    Some(f) => Some(Some(f)),
                    None => no_filter.then_some(None),
                },
            };
            if body.fields().is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give at least one option".into(),
                ));
            }
            patch(json_mode, &api, &id, &body).await
        }
        SubscriberCommand::PreviewTransform {
            api,
            id,
            event_type,
            data,
            transform,
        } => {
            let data: serde_json::Value = serde_json::from_str(&data)
                .map_err(|e| CliError::Usage(format!("--data is not JSON: {e}")))?;
            let body = TransformPreview {
                event_type,
                data,
                timestamp: None,
                transform: read_transform(transform)?,
            };
            let out = api
                .client()?
                .send::<_, TransformPreviewResult>(
                    Method::POST,
                    &format!("/v1/subscribers/{id}/transform/preview"),
                    Some(&body),
                    &[],
                )
                .await?;
            print_value(json_mode, &out.json());
            Ok(())
        }
        SubscriberCommand::Enable { api, id } => {
            patch(json_mode, &api, &id, &UpdateSubscriber::active(true)).await
        }
        SubscriberCommand::Disable { api, id } => {
            patch(json_mode, &api, &id, &UpdateSubscriber::active(false)).await
        }
        SubscriberCommand::RotateSecret { api, id, secret } => {
            rotate_secret(json_mode, &api.client()?, &id, &RotateSecret { secret }).await
        }
        SubscriberCommand::Test { api, id } => {
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
            let plans = read_plan(&file)?;
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

/// The program of `--transform`, or read from `--transform-file` (`-`: standard input).
pub(crate) fn read_transform(args: crate::TransformArgs) -> Result<Option<String>, CliError> {
    read_program(args.transform, args.transform_file)
}

/// The expression of `--filter`, or read from `--filter-file` (`-`: standard input).
pub(crate) fn read_filter(args: crate::FilterArgs) -> Result<Option<String>, CliError> {
    read_program(args.filter, args.filter_file)
}

fn read_program(
    inline: Option<String>,
    file: Option<std::path::PathBuf>,
) -> Result<Option<String>, CliError> {
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

async fn create(
    json_mode: bool,
    client: &ApiClient,
    body: &CreateSubscriber,
) -> Result<(), CliError> {
    let created = client
        .send::<_, SubscriberView>(Method::POST, "/v1/subscribers", Some(body), &[])
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

async fn list(
    json_mode: bool,
    client: &ApiClient,
    query: SubscribersQuery,
    all: bool,
) -> Result<(), CliError> {
    let rows = list_pages::<SubscriberView, _>(client, "/v1/subscribers", query, all).await?;
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
                match client
                    .send::<_, SubscriberView>(Method::POST, "/v1/subscribers", Some(&body), &[])
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
                            ..Imported::new(endpoint.url, "created")
                        }
                    }
                    Err(e) => Imported {
                        error: Some(e.to_string()),
                        ..Imported::new(endpoint.url, "failed")
                    },
                }
            }
            Plan::Update { id, body } => {
                let note = endpoint
                    .secret
                    .as_ref()
                    .map(|_| "secret ignored for an existing subscriber; use rotate-secret");
                match client
                    .send::<_, SubscriberView>(
                        Method::PATCH,
                        &format!("/v1/subscribers/{id}"),
                        Some(&body),
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
        };
        results.push(result);
        progress.advance(1);
    }
    progress.finish();
    let failed = results.iter().filter(|r| r.failed()).count();
    if json_mode {
        println!("{}", json!({"results": results}));
    } else {
        for r in &results {
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
    if failed > 0 {
        Err(CliError::Failed(format!(
            "{failed} of {} entries failed",
            results.len()
        )))
    } else {
        Ok(())
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
