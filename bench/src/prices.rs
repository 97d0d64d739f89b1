//! The AWS list prices the cost table of `make bench` multiplies by: us-east-1, on-demand,
//! as AWS published them on [`RECORDED`]. They are written down here by hand, not fetched
//! at run time, so the table is only as current as this file; when AWS changes a price,
//! change it here and the date with it. Also the Lambda memory sizes, which are read from
//! `infra/template.yaml` so that the figure follows the template.

use std::path::PathBuf;

/// When the prices below were taken from AWS's published price lists.
pub const RECORDED: &str = "2026-11-29";
pub const REGION: &str = "us-east-1";

/// API Gateway HTTP API, per million requests (first 300 million a month).
pub const API_GATEWAY_HTTP_PER_MILLION_REQUESTS: f64 = 1.00;
/// SQS standard queue, per million requests; each started 64 KiB of a payload is a request.
pub const SQS_STANDARD_PER_MILLION_REQUESTS: f64 = 0.40;
/// DynamoDB on-demand (standard table class), per million write request units.
pub const DYNAMODB_PER_MILLION_WRITE_UNITS: f64 = 0.625;
/// DynamoDB on-demand (standard table class), per million read request units.
pub const DYNAMODB_PER_MILLION_READ_UNITS: f64 = 0.125;
/// DynamoDB Streams read by a Lambda trigger: AWS does not charge for those reads.
pub const DYNAMODB_STREAMS_READ_BY_LAMBDA_PER_MILLION: f64 = 0.0;
/// Secrets Manager, per 10,000 API calls.
pub const SECRETS_MANAGER_PER_10K_CALLS: f64 = 0.05;
/// Lambda on arm64 (Graviton), per million requests.
pub const LAMBDA_ARM64_PER_MILLION_REQUESTS: f64 = 0.20;
/// Lambda on arm64, per GB-second of duration (first pricing tier).
pub const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// EventBridge custom events put on a bus, per million (64 KB chunks).
pub const EVENTBRIDGE_CUSTOM_EVENTS_PER_MILLION: f64 = 1.00;
/// EventBridge API destinations, per million invocations (64 KB chunks).
pub const EVENTBRIDGE_API_DESTINATION_PER_MILLION: f64 = 0.20;
/// DynamoDB storage (standard table class), per GB-month; each item counts 100 bytes more.
pub const DYNAMODB_PER_GB_MONTH: f64 = 0.25;
/// Secrets Manager, per secret a month.
pub const SECRETS_MANAGER_PER_SECRET_MONTH: f64 = 0.40;
/// CloudWatch, per custom metric a month (first 10,000) and per standard alarm a month.
pub const CLOUDWATCH_PER_METRIC_MONTH: f64 = 0.30;
pub const CLOUDWATCH_PER_ALARM_MONTH: f64 = 0.10;
/// The delivery function's stack-wide EMF metrics: delivered, failed, retried, deferred,
/// exhausted, latency (`functions/delivery/src/metrics.rs`).
pub const CLOUDWATCH_METRICS: u32 = 6;
/// CloudWatch Logs, per GB ingested (standard class) and per GB-month stored.
pub const CLOUDWATCH_LOGS_PER_GB_INGESTED: f64 = 0.50;
pub const CLOUDWATCH_LOGS_PER_GB_MONTH: f64 = 0.03;
/// Data transfer out to the internet, per GB (the first 10 TB a month).
pub const DATA_TRANSFER_OUT_PER_GB: f64 = 0.09;

/// The peers, from their public price lists as of [`PEERS_RECORDED`]; a plan's price and
/// what it charges per million messages (events delivered) beyond what it includes.
pub const PEERS_RECORDED: &str = "2026-12-07";
/// Svix Professional: $490 a month with 50,000 messages, then $0.0001 a message.
pub const SVIX_PRO_MONTHLY: f64 = 490.0;
pub const SVIX_PRO_INCLUDED: f64 = 50_000.0;
pub const SVIX_PER_MILLION: f64 = 100.0;
/// Hookdeck Team: $39 a month, then about $10 per million events.
pub const HOOKDECK_TEAM_MONTHLY: f64 = 39.0;
pub const HOOKDECK_PER_MILLION: f64 = 10.0;

/// How many resources of `kind` (`AWS::CloudWatch::Alarm`, …) the template declares.
pub fn count_resources(template: &str, kind: &str) -> Result<usize, String> {
    let doc = parse(template)?;
    let resources = doc["Resources"]
        .as_mapping()
        .ok_or("the template has no Resources")?;
    Ok(resources
        .values()
        .filter(|r| r["Type"].as_str() == Some(kind))
        .count())
}

pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml")
}

/// The memory (MB) a function of a SAM template gets: its own `MemorySize`, else the one of
/// `Globals.Function`; a `!Ref` to a parameter takes the parameter's default.
pub fn lambda_memory_mb(template: &str, logical_id: &str) -> Result<u64, String> {
    let doc = parse(template)?;
    if doc["Resources"][logical_id].is_null() {
        return Err(format!("the template has no resource {logical_id}"));
    }
    let own = &doc["Resources"][logical_id]["Properties"]["MemorySize"];
    let setting = if own.is_null() {
        &doc["Globals"]["Function"]["MemorySize"]
    } else {
        own
    };
    number(&doc, setting)
        .ok_or_else(|| format!("{logical_id} has no MemorySize the bench can read"))
}

/// The batch an SQS event source of a function hands it: `BatchSize` and
/// `MaximumBatchingWindowInSeconds` (0 when unset), parameters resolved to their defaults.
pub fn sqs_batching(template: &str, logical_id: &str) -> Result<(usize, u64), String> {
    let doc = parse(template)?;
    let events = doc["Resources"][logical_id]["Properties"]["Events"]
        .as_mapping()
        .ok_or_else(|| format!("{logical_id} has no event sources"))?;
    let source = events
        .values()
        .find(|e| e["Type"].as_str() == Some("SQS"))
        .ok_or_else(|| format!("{logical_id} has no SQS event source"))?;
    let props = &source["Properties"];
    let size = number(&doc, &props["BatchSize"])
        .ok_or_else(|| format!("{logical_id}'s SQS event source has no BatchSize"))?;
    let window = if props["MaximumBatchingWindowInSeconds"].is_null() {
        0
    } else {
        number(&doc, &props["MaximumBatchingWindowInSeconds"]).ok_or_else(|| {
            format!("{logical_id}'s MaximumBatchingWindowInSeconds is not a number")
        })?
    };
    Ok((size as usize, window))
}

fn parse(template: &str) -> Result<serde_norway::Value, String> {
    // CloudFormation's short tags (`!Ref`, `!Sub`, …) parse as tagged values, which the
    // look-ups read where they must and ignore elsewhere.
    serde_norway::from_str(template).map_err(|e| format!("the template is not YAML: {e}"))
}

/// A number setting, or a `!Ref` to a parameter, which gives its default.
fn number(doc: &serde_norway::Value, setting: &serde_norway::Value) -> Option<u64> {
    let value = match setting {
        serde_norway::Value::Tagged(tagged)
            if tagged.tag.to_string().trim_start_matches('!') == "Ref" =>
        {
            let name = tagged.value.as_str().unwrap_or_default();
            &doc["Parameters"][name]["Default"]
        }
        other => other,
    };
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "
Parameters:
  Memory:
    Type: Number
    Default: 512
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [!Ref Architecture]
    MemorySize: 256
Resources:
  Plain:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub ${AWS::StackName}-plain
  Big:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: 1024
  Parametrised:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: !Ref Memory
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Q.Arn
            BatchSize: !Ref Memory
            MaximumBatchingWindowInSeconds: 2
  Unwindowed:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Queue:
          Type: SQS
          Properties:
            BatchSize: 10
";

    #[test]
    fn memory_comes_from_the_function_then_the_globals() {
        assert_eq!(lambda_memory_mb(TEMPLATE, "Plain"), Ok(256));
        assert_eq!(lambda_memory_mb(TEMPLATE, "Big"), Ok(1024));
        assert_eq!(lambda_memory_mb(TEMPLATE, "Parametrised"), Ok(512));
        assert!(lambda_memory_mb(TEMPLATE, "Missing").is_err());
    }

    #[test]
    fn sqs_batching_reads_size_and_window_through_parameters() {
        assert_eq!(sqs_batching(TEMPLATE, "Parametrised"), Ok((512, 2)));
        assert_eq!(sqs_batching(TEMPLATE, "Unwindowed"), Ok((10, 0)));
        assert!(sqs_batching(TEMPLATE, "Plain").is_err());
    }

    #[test]
    fn the_real_template_batches_deliveries_as_skyhook_local_does() {
        let text = std::fs::read_to_string(template_path()).expect("infra/template.yaml");
        assert_eq!(
            sqs_batching(&text, "DeliveryFunction"),
            Ok((
                skyhook_cli::local::DEFAULT_BATCH_SIZE,
                skyhook_cli::local::DEFAULT_BATCHING_WINDOW.as_secs()
            ))
        );
    }

    #[test]
    fn the_real_template_names_the_memory_of_the_two_functions_a_delivery_runs() {
        let text = std::fs::read_to_string(template_path()).expect("infra/template.yaml");
        for function in ["IngestHttpFunction", "DeliveryFunction"] {
            let mb = lambda_memory_mb(&text, function).expect(function);
            assert!((128..=10_240).contains(&mb), "{function}: {mb} MB");
        }
    }
}
