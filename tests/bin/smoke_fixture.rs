//! What `make smoke` runs the real Lambda binaries against. In the emulator at
//! `AWS_ENDPOINT_URL` it provisions a table and queues, the admin key secret, and the sample
//! subscribers and inbound source of `events/` with two receivers on 127.0.0.1 (answering 200
//! and 500); it
//! writes the functions' environment to the file named by its first argument, and keeps the
//! receivers serving. On SIGTERM or Ctrl-C it writes what it saw (requests per receiver,
//! queue depths) to the file named by its second argument and exits.

use std::io::Write;
use std::path::Path;

use aws_sdk_sqs::types::QueueAttributeName;
use skyhook_aws::{ResourceNames, provision};
use skyhook_domain::config;
use skyhook_domain::retry::RetrySchedule;
use skyhook_tests::samples::{SAMPLE_ADMIN_KEY, seed_sample_source, seed_sample_subscribers};
use skyhook_tests::{Receiver, sdk_config, unique};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(env_file), Some(report_file)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: skyhook-smoke-fixture ENV_FILE REPORT_FILE");
    };
    let mut terminate = signal(SignalKind::terminate())?;

    let sdk = sdk_config().await;
    let prefix = unique("skyhook-smoke");
    // The deployed queue's redrive policy, as the template derives it.
    let resources = provision(
        &sdk,
        &ResourceNames::with_prefix(&prefix),
        RetrySchedule::default().max_attempts(),
    )
    .await?;
    let secret_prefix = format!("{prefix}/subscribers/");
    let ok = Receiver::always(200).await;
    let failing = Receiver::always(500).await;
    seed_sample_subscribers(
        &sdk,
        &resources,
        &secret_prefix,
        &ok.url("/hook"),
        &failing.url("/hook"),
    )
    .await;
    let source_secret_prefix = format!("{prefix}/sources/");
    seed_sample_source(&sdk, &resources, &source_secret_prefix).await;
    // As in AWS, the functions get the admin key's secret, not the key.
    let admin_secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("{prefix}/admin-key"))
        .secret_string(SAMPLE_ADMIN_KEY)
        .send()
        .await?;
    let admin_secret_arn = admin_secret
        .arn()
        .ok_or_else(|| anyhow::anyhow!("CreateSecret returned no ARN"))?;

    let mut env = vec![
        (config::TABLE, resources.table.clone()),
        (config::STATS_TABLE, resources.stats_table.clone()),
        (config::QUEUE_URL, resources.queue_url.clone()),
        (config::DLQ_URL, resources.dlq_url.clone()),
        (config::SECRET_PREFIX, secret_prefix),
        (config::SOURCE_SECRET_PREFIX, source_secret_prefix),
        (config::KEYRING_SECRET, resources.keyring_secret.clone()),
        (config::ADMIN_KEY_SECRET, admin_secret_arn.to_string()),
        (config::LOG_RETENTION, "1d".to_string()),
        // The receivers are on 127.0.0.1 over http, which only local mode may reach:
        // outside it every delivery re-checks its URL and refuses both.
        (config::LOCAL_MODE, "true".to_string()),
    ];
    // The functions reach the same emulator with the same settings as this process.
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        if let Ok(value) = std::env::var(name) {
            env.push((name, value));
        }
    }
    write_atomically(
        Path::new(&env_file),
        &env.iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>(),
    )?;
    println!("smoke fixture: resources {prefix}, environment in {env_file}");

    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // What the stats function folded from events/dynamodb-stream.json, read the way the
    // API reads it.
    let stats = skyhook_aws::DynamoDbAttemptLog::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &resources.table,
        std::time::Duration::from_secs(3600),
    )
    .with_stats_table(Some(resources.stats_table.clone()));
    let totals = skyhook_domain::ports::AttemptLog::stats(
        &stats,
        &skyhook_domain::ids::TenantId::default_tenant(),
        None,
    )
    .await?;
    let report = serde_json::json!({
        "stats": {"success": totals.success, "failure": totals.failure, "attempts": totals.attempts},
        "ok_requests": ok.requests().len(),
        "failing_requests": failing.requests().len(),
        "webhook_ids": ok.requests().iter().map(|r| r.header("webhook-id").to_string()).collect::<Vec<_>>(),
        "queue_depth": depth(&sqs, &resources.queue_url).await?,
        "dlq_depth": depth(&sqs, &resources.dlq_url).await?,
    });
    write_atomically(Path::new(&report_file), &report.to_string())?;
    Ok(())
}

/// Visible plus in-flight messages.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<u64> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    let attrs = out.attributes().cloned().unwrap_or_default();
    Ok(attrs.values().filter_map(|v| v.parse::<u64>().ok()).sum())
}

/// The smoke script waits for the file to exist, so it must never see it half written.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("partial");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}
