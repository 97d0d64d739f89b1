//! Lambda's event sources, played in the test: the delivery queue polled into the real
//! delivery handler in the background ([`DeliveryRunner`]), the table's stream drained into
//! the stats consumer, and [`eventually`] for what settles a little later.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use skyhook_cli::sqs_poller::{SqsHandler, SqsPoller, handler};
use skyhook_cli::streams::stream_handler;

use crate::Stack;

pub struct DeliveryRunner {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DeliveryRunner {
    /// Stops polling after in-flight batches finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(30), &mut task)
            .await
            .is_err()
        {
            // Left running, it would race whatever the test checks next.
            task.abort();
            panic!("the delivery runner did not stop within 30 s");
        }
    }
}

impl Stack {
    /// The delivery function as the poller calls it; every call's duration is recorded in
    /// [`Stack::invocations`] (what Lambda would bill).
    pub fn delivery_handler(&self) -> SqsHandler {
        let deliverer = self.deliverer.clone();
        let invocations = self.invocations.clone();
        handler(move |event| {
            let (deliverer, invocations) = (deliverer.clone(), invocations.clone());
            async move {
                let started = Instant::now();
                let result = skyhook_delivery::handle(&deliverer, event).await;
                invocations.lock().unwrap().push(started.elapsed());
                result
            }
        })
    }

    pub fn poller(&self) -> SqsPoller {
        SqsPoller::new(self.delivery_sqs.clone(), &self.resources.queue_url)
            .with_wait_time(Duration::from_secs(1))
    }

    /// Runs the stats consumer over everything the table's stream holds now, as Lambda's
    /// stream event source would shortly after; returns how many records it read.
    pub async fn settle_stats(&self) -> usize {
        let counters = self.stats_counters.clone();
        let handler = stream_handler(move |event| {
            let counters = counters.clone();
            async move { skyhook_delivery::stats::handle(&counters, event).await }
        });
        self.stream
            .lock()
            .await
            .drain(&handler)
            .await
            .expect("the stats consumer failed")
    }

    /// Starts polling the delivery queue in the background, like the event source mapping.
    pub fn start_delivery(&self) -> DeliveryRunner {
        self.start_delivery_with(self.poller())
    }

    /// [`Stack::start_delivery`] with batches gathered as an event source with a batching
    /// window does (up to `size` messages within `window`), and 20-second long polls as
    /// Lambda makes them.
    pub fn start_batched_delivery(&self, size: usize, window: Duration) -> DeliveryRunner {
        self.start_delivery_with(
            self.poller()
                .with_batch_size(size)
                .with_batching_window(window)
                .with_wait_time(Duration::from_secs(20)),
        )
    }

    fn start_delivery_with(&self, poller: SqsPoller) -> DeliveryRunner {
        let (stop, rx) = watch::channel(false);
        let handler = self.delivery_handler();
        // One consumer: a message is never in two handlers at once, so a test sees each
        // attempt once (SQS may still redeliver; the tests allow for that by webhook-id).
        let task = tokio::spawn(async move { poller.run(handler, 1, rx).await });
        DeliveryRunner { stop, task }
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
