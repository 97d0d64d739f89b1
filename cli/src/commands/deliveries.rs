//! `skyhook deliveries` (the attempt log) and `skyhook stats` (delivery totals, and with
//! `--series` attempts over time).

use clap::Args;

use skyhook_api_types::Cursor;
use skyhook_api_types::deliveries::{AttemptView, SeriesView, StatsView};
use skyhook_api_types::query::{DeliveriesQuery, SeriesQuery, StatsQuery};
use skyhook_cli::client::CliError;
use skyhook_domain::series::Bucket;

use super::args::ApiArgs;
use super::output::{list_pages, print_rows, print_value};
use super::{event_id, limit, outcome, subscriber_id, time};

/// The flags of `skyhook deliveries`.
#[derive(Args)]
pub struct DeliveriesArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[arg(long = "subscriber")]
    subscriber: Option<String>,
    #[arg(long = "event")]
    event: Option<String>,
    /// success or failure.
    #[arg(long)]
    outcome: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[arg(long)]
    cursor: Option<String>,
    /// Follow next_cursor to the end.
    #[arg(long)]
    all: bool,
}

/// The flags of `skyhook stats`.
#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Only this subscriber's deliveries.
    #[arg(long = "subscriber")]
    subscriber: Option<String>,
    #[command(flatten)]
    series: SeriesArgs,
}

/// Attempts over time (`GET /v1/stats/timeseries`).
#[derive(Args, Clone, Default)]
struct SeriesArgs {
    /// Show attempts over time, one line per bucket: successes, failures, p50/p95 latency.
    #[arg(long)]
    series: bool,
    /// With --series: minute, hour (default) or day.
    #[arg(long, requires = "series")]
    bucket: Option<String>,
    /// With --series: from the bucket holding this time (RFC 3339).
    #[arg(long, requires = "series")]
    since: Option<String>,
    /// With --series: to the bucket holding this time (RFC 3339; default now).
    #[arg(long, requires = "series")]
    until: Option<String>,
}

/// `skyhook deliveries`: the attempt log, a page or with `--all` every page.
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

/// `skyhook stats`: the totals, or with `--series` attempts over time.
pub async fn stats(json_mode: bool, args: StatsArgs) -> Result<(), CliError> {
    if args.series.series {
        series(json_mode, &args.api, args.subscriber, args.series).await
    } else {
        totals(json_mode, &args.api, args.subscriber).await
    }
}

/// `GET /v1/stats`: success, failure, average attempts.
async fn totals(
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

/// `GET /v1/stats/timeseries`, one line per bucket with a bar of its attempts.
async fn series(
    json_mode: bool,
    api: &ApiArgs,
    subscriber: Option<String>,
    args: SeriesArgs,
) -> Result<(), CliError> {
    let bucket = args
        .bucket
        .as_deref()
        .map(|b| {
            Bucket::parse(b)
                .ok_or_else(|| CliError::Failed("--bucket must be minute, hour or day".into()))
        })
        .transpose()?;
    let query = SeriesQuery {
        subscriber_id: subscriber_id(subscriber)?,
        bucket,
        since: time("--since", args.since)?,
        until: time("--until", args.until)?,
    };
    let out = api
        .client()?
        .get::<SeriesView>("/v1/stats/timeseries", &query)
        .await?;
    if json_mode {
        println!("{}", out.json());
        return Ok(());
    }
    let most = out
        .body
        .points
        .iter()
        .map(|p| p.success + p.failure)
        .max()
        .unwrap_or(0)
        .max(1);
    let ms = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| format!("{v} ms"));
    println!(
        "{:<24}  {:>8}  {:>8}  {:>9}  {:>9}",
        "start", "success", "failure", "p50", "p95"
    );
    for p in &out.body.points {
        // 30 columns for the busiest bucket: `#` successes, `x` failures.
        let width = |n: u64| ((n * 30).div_ceil(most)) as usize;
        println!(
            "{:<24}  {:>8}  {:>8}  {:>9}  {:>9}  {}{}",
            p.start,
            p.success,
            p.failure,
            ms(p.p50_ms),
            ms(p.p95_ms),
            "#".repeat(width(p.success)),
            "x".repeat(width(p.failure)),
        );
    }
    Ok(())
}
