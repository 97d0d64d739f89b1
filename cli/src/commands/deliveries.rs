//! `skyhook deliveries` (the attempt log) and `skyhook stats` (delivery totals).

use skyhook_api_types::Cursor;
use skyhook_api_types::deliveries::{AttemptView, StatsView};
use skyhook_api_types::query::{DeliveriesQuery, StatsQuery};
use skyhook_cli::client::CliError;

use super::output::{list_pages, print_rows, print_value};
use super::{event_id, limit, outcome, subscriber_id, time};
use crate::{ApiArgs, DeliveriesArgs};

pub async fn list(json_mode: bool, args: DeliveriesArgs) -> Result<(), CliError> {
    let client = args.api.client()?;
    let query = DeliveriesQuery {
        subscriber_id: subscriber_id(args.subscriber)?,
        event_id: event_id(args.event)?,
        outcome: outcome(args.outcome)?,
        since: time("--since", args.since)?,
        until: time("--until", args.until)?,
        limit: Some(limit(args.limit)?),
        cursor: args.cursor.map(Cursor),
    };
    let rows = list_pages::<AttemptView, _>(&client, "/v1/deliveries", query, args.all).await?;
    print_rows(json_mode, &rows, |d| {
        format!(
            "{}  {}  {}  #{}  {:<7}  {}  {}ms{}",
            d.started_at,
            d.event_id,
            d.subscriber_id,
            d.attempt,
            d.outcome.as_str(),
            d.status_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            d.latency_ms,
            d.error
                .as_deref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default(),
        )
    });
    Ok(())
}

pub async fn stats(
    json_mode: bool,
    api: &ApiArgs,
    subscriber: Option<String>,
) -> Result<(), CliError> {
    let client = api.client()?;
    let query = StatsQuery {
        subscriber_id: subscriber_id(subscriber)?,
    };
    let stats = client.get::<StatsView>("/v1/stats", &query).await?;
    print_value(json_mode, &stats.json());
    Ok(())
}
