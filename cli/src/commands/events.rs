//! `skyhook events send` and `skyhook events show`.

use reqwest::Method;
use serde_json::{Value, json};

use skyhook_cli::client::CliError;

use crate::EventCommand;

pub async fn run(json_mode: bool, cmd: EventCommand) -> Result<(), CliError> {
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
