//! `skyhook events send`, `skyhook events show` and `skyhook events resend`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use skyhook_api_types::events::{
    EventView, PublishEvent, PublishReceiptView, Resend, ResendResult,
};
use skyhook_cli::client::CliError;

use super::args::ApiArgs;

#[derive(Subcommand)]
pub enum EventCommand {
    /// Publish an event.
    Send(SendArgs),
    /// Show an event and its delivery status per subscriber.
    Show {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    /// Send an event to one of its subscribers again, with the same webhook-id.
    Resend {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        /// The subscriber to send it to (sub_…).
        #[arg(long)]
        subscriber: String,
    },
}

/// The flags of `events send`.
#[derive(Args)]
pub struct SendArgs {
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
}

/// Hands each subcommand to its function.
pub async fn run(json_mode: bool, cmd: EventCommand) -> Result<(), CliError> {
    match cmd {
        EventCommand::Send(args) => send(json_mode, args).await,
        EventCommand::Resend {
            api,
            id,
            subscriber,
        } => resend(json_mode, &api, &id, subscriber).await,
        EventCommand::Show { api, id } => show(json_mode, &api, &id).await,
    }
}

/// `events send`: publishes the event and prints its id and how many subscribers get it.
async fn send(json_mode: bool, args: SendArgs) -> Result<(), CliError> {
    let body = PublishEvent {
        event_type: args.event_type,
        data: read_data(args.data, args.data_file)?,
        id: None,
        subscriber_ids: (!args.subscribers.is_empty()).then_some(args.subscribers),
    };
    let mut headers = Vec::new();
    if let Some(k) = &args.idempotency_key {
        headers.push(("idempotency-key", k.as_str()));
    }
    if let Some(c) = &args.correlation_id {
        headers.push(("x-correlation-id", c.as_str()));
    }
    let out = args
        .api
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

/// `events resend`: the event to one subscriber again, with the same webhook-id.
async fn resend(
    json_mode: bool,
    api: &ApiArgs,
    id: &str,
    subscriber: String,
) -> Result<(), CliError> {
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

/// `events show`: the event, then a line per subscriber with its delivery status.
async fn show(json_mode: bool, api: &ApiArgs, id: &str) -> Result<(), CliError> {
    let out = api
        .client()?
        .get::<EventView>(&format!("/v1/events/{id}"), &())
        .await?;
    if json_mode {
        println!("{}", out.json());
        return Ok(());
    }
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
    Ok(())
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
