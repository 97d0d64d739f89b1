//! `skyhook events send`, `skyhook events show` and `skyhook events resend`.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use skyhook_api_types::events::{
    EventView, PublishEvent, PublishReceiptView, Resend, ResendResult,
};
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
            let body = PublishEvent {
                event_type,
                data: read_data(data, data_file)?,
                id: None,
                subscriber_ids: (!subscribers.is_empty()).then_some(subscribers),
            };
            let mut headers = Vec::new();
            if let Some(k) = &idempotency_key {
                headers.push(("idempotency-key", k.as_str()));
            }
            if let Some(c) = &correlation_id {
                headers.push(("x-correlation-id", c.as_str()));
            }
            let out = api
                .client()?
                .send::<_, PublishReceiptView>(Method::POST, "/v1/events", Some(&body), &headers)
                .await?;
            if json_mode {
                println!("{}", out.json());
            } else {
                let r = &out.body;
                println!(
                    "{}  {}  to {} subscriber(s)",
                    r.id, r.event_type, r.subscribers
                );
            }
            Ok(())
        }
        EventCommand::Resend {
            api,
            id,
            subscriber,
        } => {
            let out = api
                .client()?
                .send::<_, ResendResult>(
                    Method::POST,
                    &format!("/v1/events/{id}/resend"),
                    Some(&Resend {
                        subscriber_id: subscriber,
                    }),
                    &[],
                )
                .await?;
            if json_mode {
                println!("{}", out.json());
            } else {
                let r = &out.body;
                println!(
                    "{} to {}: {} again (after {} attempts)",
                    r.event_id,
                    r.subscriber_id,
                    r.status.as_str(),
                    r.attempts
                );
            }
            Ok(())
        }
        EventCommand::Show { api, id } => {
            let out = api
                .client()?
                .get::<EventView>(&format!("/v1/events/{id}"), &())
                .await?;
            if json_mode {
                println!("{}", out.json());
            } else {
                let e = &out.body;
                println!("{}  {}  {}", e.id, e.event_type, e.timestamp);
                for d in &e.deliveries {
                    println!(
                        "  {}  {:<9}  attempts {}  {}{}",
                        d.subscriber_id,
                        d.status.as_str(),
                        d.attempts,
                        d.last_status_code
                            .map(|c| format!("HTTP {c}"))
                            .unwrap_or_default(),
                        d.last_error
                            .as_deref()
                            .map(|e| format!("  {e}"))
                            .unwrap_or_default(),
                    );
                }
            }
            Ok(())
        }
    }
}

/// The event's data from `--data`, `--data-file` (`-` for stdin) or `{}`. It must be JSON;
/// it is sent compact, whatever spacing the file had.
fn read_data(
    data: Option<String>,
    data_file: Option<PathBuf>,
) -> Result<Box<serde_json::value::RawValue>, CliError> {
    let raw = match (data, data_file) {
        (Some(d), _) => d,
        (None, Some(f)) if f.as_os_str() == "-" => std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::Usage(format!("reading stdin: {e}")))?,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| CliError::Usage(format!("reading {}: {e}", f.display())))?,
        (None, None) => "{}".to_string(),
    };
    let data: Value = serde_json::from_str(&raw)
        .map_err(|e| CliError::Usage(format!("the event data is not JSON: {e}")))?;
    serde_json::value::to_raw_value(&data)
        .map_err(|e| CliError::Failed(format!("cannot encode the event data: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_must_be_json_and_is_sent_compact() {
        let data = read_data(Some("{ \"b\": 1,\n  \"a\": [1, 2] }".into()), None).unwrap();
        assert_eq!(data.get(), r#"{"b":1,"a":[1,2]}"#);
        assert_eq!(read_data(None, None).unwrap().get(), "{}");
        let err = read_data(Some("{nope".into()), None).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().starts_with("the event data is not JSON"),
            "{err}"
        );
    }
}
