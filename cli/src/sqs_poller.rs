//! An SQS poller that behaves like Lambda's event source mapping with
//! `ReportBatchItemFailures`: receive a batch (up to 10 messages a receive, and with a
//! batching window up to the batch size over several receives), hand it to the handler as
//! one `SqsEvent`, delete the ones it did not report as failed, and leave the failures on the
//! queue (their visibility timeout decides when they come back).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use lambda_runtime::{Context, LambdaEvent};
use tokio::sync::watch;

/// A handler as the poller calls it: the same signature as a Lambda SQS handler.
pub type SqsHandler = Arc<
    dyn Fn(
            LambdaEvent<SqsEvent>,
        )
            -> Pin<Box<dyn Future<Output = Result<SqsBatchResponse, lambda_runtime::Error>> + Send>>
        + Send
        + Sync,
>;

/// Wraps an async function into an [`SqsHandler`].
pub fn handler<F, Fut>(f: F) -> SqsHandler
where
    F: Fn(LambdaEvent<SqsEvent>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SqsBatchResponse, lambda_runtime::Error>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("SQS {operation} failed: {detail}")]
    Sqs {
        operation: &'static str,
        detail: String,
    },
}

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollStats {
    pub received: usize,
    pub deleted: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct SqsPoller {
    client: Client,
    queue_url: String,
    queue_arn: Option<String>,
    /// Messages handed to one handler call: 10 at most without a batching window, up to
    /// 10,000 with one, as Lambda allows for standard queues.
    batch_size: usize,
    /// How long a batch may gather after its first message (Lambda's
    /// `MaximumBatchingWindowInSeconds`); zero hands over what one receive returned.
    window: Duration,
    wait_time: Duration,
}

impl SqsPoller {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            queue_arn: None,
            batch_size: 10,
            window: Duration::ZERO,
            wait_time: Duration::from_secs(1),
        }
    }

    /// Long-poll wait per receive (0–20 s).
    pub fn with_wait_time(mut self, wait: Duration) -> Self {
        self.wait_time = wait.min(Duration::from_secs(20));
        self
    }

    /// Batch size, 1–10 without a batching window, up to 10,000 with one.
    pub fn with_batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.clamp(1, 10_000);
        self
    }

    /// How long a batch gathers messages after its first one, over several receives.
    pub fn with_batching_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// One receive of up to `max` (at most 10) messages, long-polling for `wait`.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, PollError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(20))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| PollError::Sqs {
                operation: "ReceiveMessage",
                detail: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(out.messages.unwrap_or_default())
    }

    /// A batch, as Lambda gathers one: a long-polling receive, then, with a batching window,
    /// more receives until the batch is full or the window (counted from the first message)
    /// has passed. Each receive in the window long-polls for what is left of it, in whole
    /// seconds as SQS takes them, so a batch closes at most a second after its window and a
    /// quiet queue costs one empty receive per batch (every receive is a billed request).
    async fn gather(&self) -> Result<Vec<Message>, PollError> {
        let limit = if self.window.is_zero() {
            self.batch_size.min(10)
        } else {
            self.batch_size
        };
        let mut messages = self.receive(limit, self.wait_time).await?;
        if messages.is_empty() || self.window.is_zero() {
            return Ok(messages);
        }
        let deadline = std::time::Instant::now() + self.window;
        while messages.len() < limit {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let wait = Duration::from_secs(left.as_secs_f64().ceil() as u64);
            let more = self.receive(limit - messages.len(), wait).await?;
            if more.is_empty() {
                break;
            }
            messages.extend(more);
        }
        Ok(messages)
    }

    /// The ARN put in each record's `eventSourceARN`, as Lambda would.
    pub fn with_queue_arn(mut self, arn: impl Into<String>) -> Self {
        self.queue_arn = Some(arn.into());
        self
    }

    /// Receives one batch, runs the handler on it and settles the messages. An error from
    /// the handler fails the whole batch, as in Lambda.
    pub async fn poll_once(&self, handler: &SqsHandler) -> Result<PollStats, PollError> {
        let received = self.gather().await?;
        let messages = received.as_slice();
        if messages.is_empty() {
            return Ok(PollStats::default());
        }
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| self.to_record(m)).collect();
        let mut stats = PollStats {
            received: messages.len(),
            ..PollStats::default()
        };
        let response = handler(LambdaEvent::new(event, Context::default())).await;
        let failed: HashSet<String> = match response {
            Ok(r) => {
                let ids: HashSet<String> = r
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect();
                let known: HashSet<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
                if ids.iter().all(|id| known.contains(id.as_str())) {
                    ids
                } else {
                    // Lambda treats an unknown identifier as a failure of the whole batch.
                    tracing::error!("handler reported an unknown message id; failing the batch");
                    known.iter().map(|s| s.to_string()).collect()
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "handler failed; the whole batch will be retried");
                messages
                    .iter()
                    .filter_map(|m| m.message_id().map(str::to_string))
                    .collect()
            }
        };
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| m.message_id().is_none_or(|id| !failed.contains(id)))
            .collect();
        stats.failed = stats.received - done.len();
        stats.deleted = self.delete(&done).await?;
        Ok(stats)
    }

    /// Deletes handled messages, ten to a `DeleteMessageBatch` (the SQS maximum).
    async fn delete(&self, messages: &[&Message]) -> Result<usize, PollError> {
        let mut deleted = 0;
        for chunk in messages.chunks(10) {
            deleted += self.delete_batch(chunk).await?;
        }
        Ok(deleted)
    }

    async fn delete_batch(&self, messages: &[&Message]) -> Result<usize, PollError> {
        if messages.is_empty() {
            return Ok(0);
        }
        let entries = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| PollError::Sqs {
                operation: "DeleteMessageBatch",
                detail: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
            })?;
        for f in out.failed() {
            tracing::warn!(
                code = f.code(),
                "a processed message could not be deleted; it will be received again"
            );
        }
        Ok(out.successful().len())
    }

    fn to_record(&self, m: &Message) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id().map(str::to_string);
        record.receipt_handle = m.receipt_handle().map(str::to_string);
        record.body = m.body().map(str::to_string);
        record.md5_of_body = m.md5_of_body().map(str::to_string);
        record.event_source = Some("aws:sqs".to_string());
        record.event_source_arn = self.queue_arn.clone();
        record.attributes = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                    .collect::<HashMap<_, _>>()
            })
            .unwrap_or_default();
        if let Some(attrs) = m.message_attributes() {
            for (name, value) in attrs {
                let mut attr = aws_lambda_events::sqs::SqsMessageAttribute::default();
                attr.string_value = value.string_value().map(str::to_string);
                attr.data_type = Some(value.data_type().to_string());
                record.message_attributes.insert(name.clone(), attr);
            }
        }
        record
    }

    /// Polls until `shutdown` turns true, with `concurrency` batches in flight at once, the
    /// way Lambda scales pollers. In-flight batches finish before this returns.
    pub async fn run(
        &self,
        handler: SqsHandler,
        concurrency: usize,
        shutdown: watch::Receiver<bool>,
    ) {
        let loops = (0..concurrency.max(1)).map(|_| {
            let (poller, handler, shutdown) = (self.clone(), handler.clone(), shutdown.clone());
            async move {
                // A poll is never cancelled half-way: a batch being delivered finishes, and
                // shutdown waits at most one long-poll interval for an idle receive.
                while !*shutdown.borrow() {
                    if let Err(e) = poller.poll_once(&handler).await {
                        tracing::warn!(error = %e, "poll failed; backing off");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        futures::future::join_all(loops).await;
    }
}
