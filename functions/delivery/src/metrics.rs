//! CloudWatch metrics in Embedded Metric Format: JSON log lines that CloudWatch Logs turns
//! into metrics at no API cost. Each batch writes one line of stack-wide figures (no
//! dimension: what the alarms and the dashboard read), and one line with a `Tenant`
//! dimension for each tenant named in `SKYHOOK_METRICS_TENANTS`. A dimension value is a
//! metric of its own at $0.30 a month, so six metrics per tenant would cost every tenant
//! $1.80 a month; per-tenant figures come from the stats table (`GET /v1/stats`) instead.
//! Never the subscriber.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use skyhook_domain::ids::TenantId;

/// What one tenant's deliveries in a batch came to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TenantTally {
    pub delivered: u64,
    pub failed: u64,
    pub retried: u64,
    pub deferred: u64,
    pub exhausted: u64,
    /// Milliseconds of each attempt that got an answer or timed out.
    pub latency_ms: Vec<u64>,
}

/// A batch's tallies, per tenant.
#[derive(Debug, Default, Clone)]
pub struct Tally(Arc<Mutex<BTreeMap<TenantId, TenantTally>>>);

/// One outcome of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Delivered,
    /// A failed attempt (retried or not).
    Failed,
    /// A retry was scheduled.
    Retried,
    /// Put off without an attempt (breaker open, over a cap or rate limit).
    Deferred,
    /// The last attempt failed: dead-lettered.
    Exhausted,
}

tokio::task_local! {
    static CURRENT: Tally;
}

impl Tally {
    /// Runs `f` with this tally as the one [`record`] and [`latency`] add to.
    pub async fn scope<F: std::future::Future>(&self, f: F) -> F::Output {
        CURRENT.scope(self.clone(), f).await
    }

    fn add(&self, tenant: &TenantId, f: impl FnOnce(&mut TenantTally)) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(tenant.clone()).or_default());
    }

    /// Every tenant's figures together.
    pub fn total(tenants: &BTreeMap<TenantId, TenantTally>) -> TenantTally {
        let mut all = TenantTally::default();
        for tally in tenants.values() {
            all.add(tally);
        }
        all
    }

    pub fn tenants(&self) -> BTreeMap<TenantId, TenantTally> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Counts an outcome in the current batch's tally (nothing outside a batch).
pub fn record(tenant: &TenantId, event: Event) {
    let _ = CURRENT.try_with(|t| {
        t.add(tenant, |c| match event {
            Event::Delivered => c.delivered += 1,
            Event::Failed => c.failed += 1,
            Event::Retried => c.retried += 1,
            Event::Deferred => c.deferred += 1,
            Event::Exhausted => c.exhausted += 1,
        })
    });
}

/// Notes an attempt's latency in the current batch's tally.
pub fn latency(tenant: &TenantId, ms: u64) {
    let _ = CURRENT.try_with(|t| t.add(tenant, |c| c.latency_ms.push(ms)));
}

impl TenantTally {
    fn add(&mut self, other: &TenantTally) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.retried += other.retried;
        self.deferred += other.deferred;
        self.exhausted += other.exhausted;
        self.latency_ms.extend_from_slice(&other.latency_ms);
    }
}

/// The EMF lines of one batch: the stack-wide figures (`all`, every tenant's together), then
/// one line for each tenant in `with_dimension` that the batch touched. Nothing for an
/// empty batch.
pub fn documents(
    namespace: &str,
    all: &TenantTally,
    tenants: &BTreeMap<TenantId, TenantTally>,
    with_dimension: &BTreeSet<TenantId>,
    at: DateTime<Utc>,
) -> Vec<Value> {
    if tenants.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![emf(namespace, None, all, at)];
    lines.extend(
        tenants
            .iter()
            .filter(|(tenant, _)| with_dimension.contains(*tenant))
            .map(|(tenant, tally)| emf(namespace, Some(tenant), tally, at)),
    );
    lines
}

/// One EMF document: the stack-wide figures (`tenant` `None`, no dimension), or one
/// tenant's under the `Tenant` dimension.
pub fn emf(
    namespace: &str,
    tenant: Option<&TenantId>,
    tally: &TenantTally,
    at: DateTime<Utc>,
) -> Value {
    let count = |name: &str| json!({"Name": name, "Unit": "Count"});
    let dimensions = match tenant {
        Some(_) => json!([["Tenant"]]),
        None => json!([[]]),
    };
    let mut doc = json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": [
                    count("Delivered"),
                    count("Failed"),
                    count("Retried"),
                    count("Deferred"),
                    count("Exhausted"),
                    {"Name": "Latency", "Unit": "Milliseconds"},
                ],
            }],
        },
        "Delivered": tally.delivered,
        "Failed": tally.failed,
        "Retried": tally.retried,
        "Deferred": tally.deferred,
        "Exhausted": tally.exhausted,
        // EMF takes at most 100 values of a metric in one line.
        "Latency": tally.latency_ms.iter().take(100).collect::<Vec<_>>(),
    });
    if let Some(tenant) = tenant {
        doc["Tenant"] = json!(tenant.as_str());
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outcomes_are_tallied_per_tenant_within_a_batch_and_nowhere_else() {
        let (a, b) = (TenantId::default_tenant(), TenantId::parse("acme").unwrap());
        record(&a, Event::Delivered);
        let tally = Tally::default();
        tally
            .scope(async {
                record(&a, Event::Delivered);
                latency(&a, 120);
                record(&a, Event::Failed);
                record(&a, Event::Retried);
                record(&b, Event::Deferred);
                record(&b, Event::Exhausted);
            })
            .await;
        let tenants = tally.tenants();
        assert_eq!(
            tenants[&a],
            TenantTally {
                delivered: 1,
                failed: 1,
                retried: 1,
                latency_ms: vec![120],
                ..TenantTally::default()
            }
        );
        assert_eq!(tenants[&b].deferred, 1);
        assert_eq!(tenants[&b].exhausted, 1);
    }

    fn tally(delivered: u64, latency: &[u64]) -> TenantTally {
        TenantTally {
            delivered,
            latency_ms: latency.to_vec(),
            ..TenantTally::default()
        }
    }

    #[test]
    fn a_batch_writes_stack_wide_figures_and_a_tenant_dimension_only_when_asked() {
        let (a, b) = (TenantId::default_tenant(), TenantId::parse("acme").unwrap());
        let tenants = BTreeMap::from([
            (a.clone(), tally(3, &[10, 20])),
            (b.clone(), tally(2, &[30])),
        ]);
        let docs = documents(
            "Skyhook/prod",
            &Tally::total(&tenants),
            &tenants,
            &BTreeSet::new(),
            Utc::now(),
        );
        assert_eq!(docs.len(), 1, "stack-wide only, by default");
        let all = &docs[0];
        let directive = &all["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Skyhook/prod");
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(all["Delivered"], 5, "every tenant's, summed");
        assert_eq!(all["Latency"], json!([30, 10, 20]), "in tenant order");
        assert!(all.get("Tenant").is_none());
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Delivered",
                "Failed",
                "Retried",
                "Deferred",
                "Exhausted",
                "Latency"
            ]
        );
        for name in &names {
            assert!(!all[name].is_null(), "{name} has a value");
        }

        // A tenant asked for gets a line of its own under the Tenant dimension alone, so
        // the stack-wide figures are not counted twice.
        let docs = documents(
            "Skyhook/prod",
            &Tally::total(&tenants),
            &tenants,
            &BTreeSet::from([b.clone()]),
            Utc::now(),
        );
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Tenant"]])
        );
        assert_eq!(docs[1]["Tenant"], "acme");
        assert_eq!(docs[1]["Delivered"], 2);
        assert!(docs.iter().all(|d| d.get("SubscriberId").is_none()));
        // Nothing for an empty batch, and no line for a named tenant the batch did not touch.
        assert!(
            documents(
                "ns",
                &TenantTally::default(),
                &BTreeMap::new(),
                &BTreeSet::from([a]),
                Utc::now()
            )
            .is_empty()
        );
    }

    #[test]
    fn a_line_carries_at_most_100_latencies() {
        let many: Vec<u64> = (0..150).collect();
        let doc = emf("ns", None, &tally(150, &many), Utc::now());
        assert_eq!(doc["Latency"].as_array().unwrap().len(), 100);
    }
}
