//! `skyhook subscribers …`: create, list, show, change, delete, rotate, test, recover and
//! import subscribers.

use reqwest::Method;
use serde_json::{Value, json};

use skyhook_cli::client::{ApiClient, CliError};
use skyhook_cli::import::Plan;
use skyhook_cli::progress::Progress;

use super::output::{field, list_pages, print_rows, print_value};
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
