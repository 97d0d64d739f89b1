//! `skyhook dlq list` and `skyhook dlq redrive`.

use clap::Subcommand;
use serde_json::json;

use skyhook_api_types::Limit;
use skyhook_api_types::dlq::{DeadView, Redrive, RedriveResult};
use skyhook_api_types::query::DlqQuery;
use skyhook_cli::client::{ApiClient, CliError};
use skyhook_cli::progress::Progress;

use super::args::ApiArgs;
use super::output::{list_pages, print_rows, until_complete};
use super::{limit, subscriber_id};

#[derive(Subcommand)]
pub enum DlqCommand {
    /// What is dead, why, and for whom.
    List {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long = "subscriber")]
        subscriber: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        all: bool,
    },
    /// Send dead messages back to the delivery queue (all, or one subscriber's); each keeps
    /// its webhook-id and gets a fresh set of attempts.
    Redrive {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long = "subscriber")]
        subscriber: Option<String>,
    },
}

pub async fn run(json_mode: bool, cmd: DlqCommand) -> Result<(), CliError> {
    match cmd {
        DlqCommand::List {
            api,
            subscriber,
            limit: n,
            all,
        } => {
            let client = api.client()?;
            let query = DlqQuery {
                subscriber_id: subscriber_id(subscriber)?,
                limit: Some(limit(n)?),
                cursor: None,
            };
            let rows = list_pages::<DeadView, _>(&client, "/v1/dlq", query, all).await?;
            print_rows(json_mode, &rows, |d| {
                format!(
                    "{}  {}  {}  {}  attempts {}  {}",
                    d.dead_at, d.event_id, d.subscriber_id, d.event_type, d.attempts, d.reason,
                )
            });
            Ok(())
        }
        DlqCommand::Redrive { api, subscriber } => {
            redrive(json_mode, &api.client()?, subscriber).await
        }
    }
}

/// Calls the redrive route until it reports the DLQ done, adding up what each call did.
async fn redrive(
    json_mode: bool,
    client: &ApiClient,
    subscriber: Option<String>,
) -> Result<(), CliError> {
    // Count first, so the bar has a total.
    let query = DlqQuery {
        subscriber_id: subscriber_id(subscriber.clone())?,
        limit: Some(Limit::MAX),
        cursor: None,
    };
    let dead = list_pages::<DeadView, _>(client, "/v1/dlq", query, true).await?;
    let body = Redrive {
        subscriber_id: subscriber,
    };
    let mut progress = Progress::new("redriving", Some(dead.items.len()));
    let (redriven, dropped) = until_complete(
        client,
        "/v1/dlq/redrive",
        &body,
        &mut progress,
        |out: &RedriveResult| (out.redriven, out.dropped, out.complete),
    )
    .await?;
    if json_mode {
        println!("{}", json!({"redriven": redriven, "dropped": dropped}));
    } else {
        println!("redriven {redriven}; {dropped} already delivered or recovered, removed");
    }
    Ok(())
}
