//! A DynamoDB Streams poller that behaves like Lambda's DynamoDB event source mapping: it
//! reads each shard in order, gathers records for up to a batching window (or a full
//! batch), hands them to the handler as one DynamoDB event, and moves on only when the
//! handler succeeds; a failed batch is handed over again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::{Event, EventRecord, StreamRecord};
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use lambda_runtime::{Context, LambdaEvent};
use tokio::sync::watch;

/// A handler as the poller calls it: the same signature as a Lambda stream handler.
pub type StreamHandler = Arc<
    dyn Fn(
            LambdaEvent<Event>,
        ) -> Pin<Box<dyn Future<Output = Result<(), lambda_runtime::Error>> + Send>>
        + Send
        + Sync,
>;

/// Wraps an async function into a [`StreamHandler`].
pub fn stream_handler<F, Fut>(f: F) -> StreamHandler
where
    F: Fn(LambdaEvent<Event>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), lambda_runtime::Error>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB Streams {operation} failed: {detail}")]
pub struct StreamError {
    operation: &'static str,
    detail: String,
}

fn stream_error<E>(operation: &'static str, e: E) -> StreamError
where
    E: std::error::Error + 'static,
{
    StreamError {
        operation,
        detail: aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string(),
    }
}

/// Where reading starts on the shards known when the poller starts; shards found later are
/// always read from their start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// Only changes made from now on (a runner restarted on kept state must not count the
    /// stream's last day again).
    Latest,
    /// Everything the stream still holds.
    TrimHorizon,
}

pub struct StreamPoller {
    client: Client,
    stream_arn: String,
    batch_size: usize,
    window: Duration,
    /// The next iterator of each open shard; a record batch not yet handled keeps the
    /// iterator it was read with, so it is read again.
    shards: HashMap<String, Option<String>>,
    /// Records read and not yet handled, each with its shard.
    pending: Vec<(String, Record)>,
    checkpoint: Option<Checkpoint>,
}

/// Where a poller has got to, kept in a table (the stats table, for `skyhook local`) so
/// that one started again on the same state (after a crash, say) goes on from the last
/// record handled, as Lambda's event source does: the last sequence number handled of
/// each shard, written after every batch. A runner killed between handling a batch and
/// writing its checkpoint hands that batch over again.
pub struct Checkpoint {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Shard id → the last sequence number handled.
    positions: HashMap<String, String>,
}

impl Checkpoint {
    const SK: &'static str = "CHECKPOINT";

    fn pk(stream_arn: &str) -> String {
        format!("STREAM#{stream_arn}")
    }

    /// The checkpoint kept in `table` for `stream_arn`, empty when there is none yet.
    pub async fn load(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        stream_arn: &str,
    ) -> Result<Self, StreamError> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let table = table.into();
        let out = client
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(Self::pk(stream_arn)))
            .key("sk", AttributeValue::S(Self::SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| stream_error("GetItem (checkpoint)", e))?;
        let positions = out
            .item()
            .and_then(|i| i.get("shards"))
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            client,
            table,
            positions,
        })
    }

    async fn save(&self, stream_arn: &str) -> Result<(), StreamError> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let shards = self
            .positions
            .iter()
            .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
            .collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(Self::pk(stream_arn)))
            .item("sk", AttributeValue::S(Self::SK.into()))
            .item("shards", AttributeValue::M(shards))
            .send()
            .await
            .map_err(|e| stream_error("PutItem (checkpoint)", e))?;
        Ok(())
    }
}

impl StreamPoller {
    pub async fn start(
        client: Client,
        stream_arn: impl Into<String>,
        position: StartingPosition,
    ) -> Result<Self, StreamError> {
        Self::open(client, stream_arn.into(), position, None).await
    }

    /// A poller that goes on from `checkpoint` (and keeps it up to date): each shard it
    /// names after its last handled record, any other from its start. With an empty
    /// checkpoint, `position` decides, as for [`StreamPoller::start`].
    pub async fn resume(
        client: Client,
        stream_arn: impl Into<String>,
        position: StartingPosition,
        checkpoint: Checkpoint,
    ) -> Result<Self, StreamError> {
        let position = if checkpoint.positions.is_empty() {
            position
        } else {
            StartingPosition::TrimHorizon
        };
        Self::open(client, stream_arn.into(), position, Some(checkpoint)).await
    }

    async fn open(
        client: Client,
        stream_arn: String,
        position: StartingPosition,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Self, StreamError> {
        let mut poller = StreamPoller {
            client,
            stream_arn,
            // As the template's event source: up to 10,000 records a batch.
            batch_size: 10_000,
            window: Duration::from_secs(5),
            shards: HashMap::new(),
            pending: Vec::new(),
            checkpoint,
        };
        poller.discover(position).await?;
        Ok(poller)
    }

    /// Batching window: how long records gather before a partial batch is handed over.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    async fn discover(&mut self, position: StartingPosition) -> Result<(), StreamError> {
        let out = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| stream_error("DescribeStream", e))?;
        let shards = out
            .stream_description()
            .map(|d| d.shards().to_vec())
            .unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            if self.shards.contains_key(id) {
                continue;
            }
            let after = self
                .checkpoint
                .as_ref()
                .and_then(|c| c.positions.get(id))
                .cloned();
            let kind = match (&after, position) {
                (Some(_), _) => ShardIteratorType::AfterSequenceNumber,
                (None, StartingPosition::Latest) => ShardIteratorType::Latest,
                (None, StartingPosition::TrimHorizon) => ShardIteratorType::TrimHorizon,
            };
            let it = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(id)
                .shard_iterator_type(kind)
                .set_sequence_number(after)
                .send()
                .await
                .map_err(|e| stream_error("GetShardIterator", e))?;
            self.shards.insert(id.to_string(), it.shard_iterator);
        }
        Ok(())
    }

    /// Reads what every shard has now; returns how many records came.
    async fn read(&mut self) -> Result<usize, StreamError> {
        let mut got = 0;
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        for id in ids {
            let Some(Some(iterator)) = self.shards.get(&id).cloned() else {
                continue;
            };
            let out = self
                .client
                .get_records()
                .shard_iterator(iterator)
                .limit(1000)
                .send()
                .await
                .map_err(|e| stream_error("GetRecords", e))?;
            got += out.records().len();
            self.pending
                .extend(out.records().iter().map(|r| (id.clone(), r.clone())));
            self.shards.insert(id, out.next_shard_iterator);
        }
        Ok(got)
    }

    /// Hands the gathered records to the handler in batches; on failure they stay gathered.
    async fn flush(&mut self, handler: &StreamHandler) -> Result<usize, lambda_runtime::Error> {
        let mut handled = 0;
        while !self.pending.is_empty() {
            let n = self.pending.len().min(self.batch_size);
            let mut event = Event::default();
            event.records = self.pending[..n]
                .iter()
                .map(|(_, r)| self.to_record(r))
                .collect();
            handler(LambdaEvent::new(event, Context::default())).await?;
            let done: Vec<(String, Record)> = self.pending.drain(..n).collect();
            handled += n;
            if let Some(checkpoint) = self.checkpoint.as_mut() {
                for (shard, r) in &done {
                    if let Some(seq) = r.dynamodb().and_then(|c| c.sequence_number()) {
                        checkpoint.positions.insert(shard.clone(), seq.to_string());
                    }
                }
                checkpoint.save(&self.stream_arn).await?;
            }
        }
        Ok(handled)
    }

    /// Reads and handles everything the stream holds now; returns how many records were
    /// handled. Tests call this to settle the stats before reading them.
    pub async fn drain(&mut self, handler: &StreamHandler) -> Result<usize, lambda_runtime::Error> {
        self.discover(StartingPosition::TrimHorizon).await?;
        while self.read().await? > 0 {}
        self.flush(handler).await
    }

    /// Polls until `shutdown` turns true, handing a batch over when it is full or the
    /// batching window has passed since its first record.
    pub async fn run(mut self, handler: StreamHandler, mut shutdown: watch::Receiver<bool>) {
        let mut since: Option<Instant> = None;
        let mut last_discovery = Instant::now();
        loop {
            let stopping = *shutdown.borrow();
            if last_discovery.elapsed() > Duration::from_secs(30) {
                if let Err(e) = self.discover(StartingPosition::TrimHorizon).await {
                    tracing::warn!(error = %e, "stream discovery failed");
                }
                last_discovery = Instant::now();
            }
            match self.read().await {
                Ok(n) if n > 0 && since.is_none() => since = Some(Instant::now()),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "stream read failed; backing off"),
            }
            let due = since.is_some_and(|t| t.elapsed() >= self.window)
                || self.pending.len() >= self.batch_size
                || stopping;
            if due && !self.pending.is_empty() {
                match self.flush(&handler).await {
                    Ok(_) => since = None,
                    Err(e) => {
                        tracing::error!(error = %e, "stream handler failed; the batch will be handed over again")
                    }
                }
            }
            if stopping {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    fn to_record(&self, r: &Record) -> EventRecord {
        let mut record = EventRecord::default();
        record.event_id = r.event_id().unwrap_or_default().to_string();
        record.event_name = r
            .event_name()
            .map(|n| n.as_str().to_string())
            .unwrap_or_default();
        record.event_source = Some("aws:dynamodb".to_string());
        record.event_source_arn = Some(self.stream_arn.clone());
        record.aws_region = r.aws_region().unwrap_or_default().to_string();
        let mut change = StreamRecord::default();
        if let Some(c) = r.dynamodb() {
            change.keys = c
                .keys()
                .cloned()
                .map(serde_dynamo::Item::from)
                .unwrap_or_default();
            change.new_image = c
                .new_image()
                .cloned()
                .map(serde_dynamo::Item::from)
                .unwrap_or_default();
            change.old_image = c
                .old_image()
                .cloned()
                .map(serde_dynamo::Item::from)
                .unwrap_or_default();
            change.sequence_number = c.sequence_number().map(str::to_string);
            change.size_bytes = c.size_bytes().unwrap_or_default();
        }
        record.change = change;
        record
    }
}
