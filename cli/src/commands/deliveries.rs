//! `skyhook deliveries` (the attempt log) and `skyhook stats` (delivery totals).

use reqwest::Method;

use skyhook_cli::client::CliError;

use super::output::{encode, field, list_pages, print_rows, print_value};
use crate::{ApiArgs, DeliveriesArgs};

pub async fn list(json_mode: bool, args: DeliveriesArgs) -> Result<(), CliError> {
    let (rows, cursor) = list_pages(
        &args.api.client()?,
        "/v1/deliveries",
        &[
            ("subscriber_id", args.subscriber),
            ("event_id", args.event),
            ("outcome", args.outcome),
            ("since", args.since),
            ("until", args.until),
        ],
        args.limit,
        args.cursor,
        args.all,
    )
    .await?;
    print_rows(json_mode, &rows, &cursor, |d| {
        format!(
            "{}  {}  {}  #{}  {:<7}  {}  {}ms{}",
            field(d, "started_at"),
            field(d, "event_id"),
            field(d, "subscriber_id"),
            d["attempt"],
            field(d, "outcome"),
            d["status_code"]
                .as_u64()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            d["latency_ms"],
            d["error"]
                .as_str()
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
    let path = match subscriber {
        Some(id) => format!("/v1/stats?subscriber_id={}", encode(&id)),
        None => "/v1/stats".to_string(),
    };
    let stats = api.client()?.call(Method::GET, &path, None, &[]).await?;
    print_value(json_mode, &stats);
    Ok(())
}
