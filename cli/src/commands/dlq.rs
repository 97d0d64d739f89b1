//! `skyhook dlq list` and `skyhook dlq redrive`.

use reqwest::Method;
use serde_json::json;

use skyhook_cli::client::CliError;
use skyhook_cli::progress::Progress;

use super::output::{field, list_pages, print_rows};
use crate::DlqCommand;

pub async fn run(json_mode: bool, cmd: DlqCommand) -> Result<(), CliError> {
    match cmd {
        DlqCommand::List {
            api,
            subscriber,
            limit,
            all,
        } => {
            let (rows, cursor) = list_pages(
                &api.client()?,
                "/v1/dlq",
                &[("subscriber_id", subscriber)],
                limit,
                None,
                all,
            )
            .await?;
            print_rows(json_mode, &rows, &cursor, |d| {
                format!(
                    "{}  {}  {}  {}  attempts {}  {}",
                    field(d, "dead_at"),
                    field(d, "event_id"),
                    field(d, "subscriber_id"),
                    field(d, "event_type"),
                    d["attempts"],
                    field(d, "reason"),
                )
            });
            Ok(())
        }
        DlqCommand::Redrive { api, subscriber } => {
            let client = api.client()?;
            // Count first, so the bar has a total.
            let (dead, _) = list_pages(
                &client,
                "/v1/dlq",
                &[("subscriber_id", subscriber.clone())],
                250,
                None,
                true,
            )
            .await?;
            let body = match &subscriber {
                Some(id) => json!({"subscriber_id": id}),
                None => json!({}),
            };
            let mut progress = Progress::new("redriving", Some(dead.len()));
            let (mut redriven, mut dropped) = (0u64, 0u64);
            for _ in 0..10_000 {
                let out = client
                    .call(Method::POST, "/v1/dlq/redrive", Some(&body), &[])
                    .await?;
                let (r, d) = (
                    out["redriven"].as_u64().unwrap_or(0),
                    out["dropped"].as_u64().unwrap_or(0),
                );
                redriven += r;
                dropped += d;
                progress.advance(usize::try_from(r + d).unwrap_or(usize::MAX));
                if out["complete"] != false {
                    break;
                }
            }
            progress.finish();
            if json_mode {
                println!("{}", json!({"redriven": redriven, "dropped": dropped}));
            } else {
                println!("redriven {redriven}; {dropped} already delivered or recovered, removed");
            }
            Ok(())
        }
    }
}
