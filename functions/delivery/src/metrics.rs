//! CloudWatch metrics in Embedded Metric Format: one JSON log line per tenant per batch,
//! which CloudWatch Logs turns into metrics at no API cost. Dimensions are the tenant and
//! none at all (for alarms across tenants); never the subscriber, which would make a metric
//! per subscriber at $0.30 a month each.

use std::collections::BTreeMap;
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

/// The EMF document of one tenant's tally.
pub fn emf(namespace: &str, tenant: &TenantId, tally: &TenantTally, at: DateTime<Utc>) -> Value {
    let count = |name: &str| json!({"Name": name, "Unit": "Count"});
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Tenant"], []],
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
        "Tenant": tenant.as_str(),
        "Delivered": tally.delivered,
        "Failed": tally.failed,
        "Retried": tally.retried,
        "Deferred": tally.deferred,
        "Exhausted": tally.exhausted,
        "Latency": tally.latency_ms,
    })
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

    #[test]
    fn the_emf_document_names_tenant_level_metrics_only() {
        let tenant = TenantId::default_tenant();
        let tally = TenantTally {
            delivered: 3,
            latency_ms: vec![10, 20],
            ..TenantTally::default()
        };
        let doc = emf("Skyhook/prod", &tenant, &tally, Utc::now());
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Skyhook/prod");
        assert_eq!(directive["Dimensions"], json!([["Tenant"], []]));
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
            assert!(!doc[name].is_null(), "{name} has a value");
        }
        assert_eq!(doc["Tenant"], "default");
        assert_eq!(doc["Latency"], json!([10, 20]));
        assert!(doc.get("SubscriberId").is_none());
    }
}
