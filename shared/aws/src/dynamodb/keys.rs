//! Every partition and sort key Skyhook writes, in one place, so that the spread of writes
//! over partitions can be checked by a test (and is argued in `docs/dynamodb.md`).
//!
//! The rule the layout keeps: no partition key receives the delivery-path writes of more
//! than one subscriber, or more than one shard of a tenant's writes. Management writes
//! (subscriber records, routes, keys, audit) go where listing them is cheapest; they happen
//! at the pace of people, not of deliveries.

use chrono::{DateTime, Utc};

use skyhook_domain::event_type::{EventType, EventTypeFilter};
use skyhook_domain::ids::{EventId, SourceId, SubscriberId, TenantId};

/// Event items are spread over this many partitions per tenant: at 10,000 events a second
/// (fan-out 1, two write units an event) each takes about 625 write units a second, inside
/// a partition's 1,000.
pub const EVENT_SHARDS: u32 = 32;
/// Dead-letter index items, spread the same way, for a storm of failures.
pub const DEAD_LETTER_SHARDS: u32 = 16;

/// FNV-1a, 64 bit: a stable hash (the shard of an id must never change between releases,
/// which rules out the standard library's randomly seeded hasher).
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub fn shard_of(id: &str, shards: u32) -> u32 {
    (stable_hash(id) % u64::from(shards)) as u32
}

/// The tenant's own partition: subscriber records, API keys by tenant, the directory
/// version and the tenant's stats.
pub fn tenant_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}

pub const SUBSCRIBER_PREFIX: &str = "SUB#";

pub fn subscriber_sk(id: &SubscriberId) -> String {
    format!("{SUBSCRIBER_PREFIX}{id}")
}

/// The tenant's directory version: bumped by every change to a subscriber, read by the
/// caches in front of subscribers and secrets.
pub const VERSION_SK: &str = "#VERSION";
/// A tenant's publish bucket, in the tenant's partition (`skyhook_domain::tenants`).
pub const PUBLISH_RATE_SK: &str = "#PUBLISH_RATE";

/// The tenants' registry: one partition, one item per tenant, listed by one query.
pub const TENANTS_PK: &str = "TENANTS";
pub const TENANT_RECORD_PREFIX: &str = "TEN#";

pub fn tenant_record_sk(tenant: &TenantId) -> String {
    format!("{TENANT_RECORD_PREFIX}{tenant}")
}

/// Stats counters, in the tenant's partition and in each subscriber's.
pub const STATS_SK: &str = "#STATS";

/// A route: one item per (filter, active subscriber), so a publish reads only the routes
/// its event type can match.
pub fn route_pk(tenant: &TenantId, filter: &str) -> String {
    format!("R#{tenant}#{filter}")
}

/// The route partitions an event type can match: `*`, each `prefix.*` above it, and the
/// type itself (`order.item.added` → `*`, `order.*`, `order.item.*`, `order.item.added`).
pub fn route_filters_for(event_type: &EventType) -> Vec<String> {
    let name = event_type.as_str();
    let mut out = vec!["*".to_string()];
    for (i, _) in name.match_indices('.') {
        out.push(format!("{}.*", &name[..i]));
    }
    out.push(name.to_string());
    out
}

/// The routes a subscriber needs: its filters with duplicates and those another of its
/// filters already covers (`order.created` beside `order.*`) left out.
pub fn route_filters_of(filters: &[EventTypeFilter]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in filters {
        let covered = filters.iter().any(|other| {
            other.as_str() != f.as_str()
                && (other.is_all()
                    || (other.as_str().ends_with(".*")
                        && f.as_str()
                            .starts_with(&other.as_str()[..other.as_str().len() - 1])))
        });
        if !covered && !out.iter().any(|o| o == f.as_str()) {
            out.push(f.as_str().to_string());
        }
    }
    out
}

/// An event, in one of the tenant's event shards (by a hash of its id), sorted by id, which
/// is time order: the tenant-wide delivery log walks these newest first.
pub fn event_pk(tenant: &TenantId, id: &EventId) -> String {
    event_shard_pk(tenant, shard_of(id.as_str(), EVENT_SHARDS))
}

pub fn event_shard_pk(tenant: &TenantId, shard: u32) -> String {
    format!("E#{tenant}#{shard:02}")
}

/// Further subscriber ids of an event fanned out to more than fit beside its payload.
pub fn event_chunk_pk(tenant: &TenantId, id: &EventId) -> String {
    format!("EC#{tenant}#{id}")
}

/// A subscriber's ledger partition: its delivery items (the latest attempt of each event,
/// which is the delivery's status), the attempts before those, and its stats.
pub fn ledger_pk(tenant: &TenantId, subscriber: &SubscriberId) -> String {
    format!("S#{tenant}#{subscriber}")
}

pub const LEDGER_PREFIX: &str = "D#";

/// The subscriber's rate-limit budget of the current second, in its ledger partition.
pub const RATE_SK: &str = "RATE";

/// The subscriber's health (breaker state, failures), in its ledger partition; only while
/// it is failing or its breaker is not closed.
pub const HEALTH_SK: &str = "HEALTH";
const LATEST: &str = "last";

/// The delivery item of (event, subscriber): its latest attempt, and so its status.
pub fn latest_sk(event: &EventId) -> String {
    format!("{LEDGER_PREFIX}{event}#{LATEST}")
}

/// An attempt that a later one replaced as the latest; the start time keeps two attempts
/// with one number (a message handed to two consumers at once) apart.
pub fn history_sk(event: &EventId, attempt: u32, started_at: DateTime<Utc>) -> String {
    format!(
        "{LEDGER_PREFIX}{event}#{attempt:05}#{:013}",
        started_at.timestamp_millis().max(0)
    )
}

/// Everything of one event in a ledger partition: earlier attempts in number order, then
/// the latest.
pub fn delivery_prefix(event: &EventId) -> String {
    format!("{LEDGER_PREFIX}{event}#")
}

pub fn is_latest_sk(sk: &str) -> bool {
    sk.starts_with(LEDGER_PREFIX) && sk.ends_with(LATEST)
}

/// The event id in a ledger sort key.
pub fn event_of_ledger_sk(sk: &str) -> Option<&str> {
    sk.strip_prefix(LEDGER_PREFIX)?.split('#').next()
}

/// The first ten characters of a ULID are its millisecond time; every id minted at or
/// before `t` sorts at or below this bound (`~` sorts after every Crockford digit).
pub fn event_id_upper_bound(t: DateTime<Utc>) -> String {
    format!(
        "{}{}~",
        EventId::PREFIX,
        skyhook_domain::ids::ulid_time_prefix(t.timestamp_millis().max(0) as u128)
    )
}

/// Ledger sort keys of events accepted at or before `t`: attempts start after their event
/// was accepted, so this bounds a search for attempts started by `t`.
pub fn ledger_upper_bound(t: DateTime<Utc>) -> String {
    format!("{LEDGER_PREFIX}{}", event_id_upper_bound(t))
}

/// A dead-letter index item, in one of the tenant's dead-letter shards, oldest event first.
pub fn dead_letter_pk(tenant: &TenantId, event: &EventId) -> String {
    dead_letter_shard_pk(tenant, shard_of(event.as_str(), DEAD_LETTER_SHARDS))
}

pub fn dead_letter_shard_pk(tenant: &TenantId, shard: u32) -> String {
    format!("DL#{tenant}#{shard:02}")
}

pub fn dead_letter_sk(event: &EventId, subscriber: &SubscriberId) -> String {
    format!("{event}#{subscriber}")
}

/// `gsi1` (sparse: only dead-letter items carry it): one subscriber's dead letters.
pub fn dead_letter_by_subscriber_pk(tenant: &TenantId, subscriber: &SubscriberId) -> String {
    format!("DLS#{tenant}#{subscriber}")
}

/// An API key found by the SHA-256 digest of the key.
pub fn api_key_digest_pk(digest_hex: &str) -> String {
    format!("K#{digest_hex}")
}

pub const API_KEY_DIGEST_SK: &str = "#KEY";
pub const API_KEY_PREFIX: &str = "KEY#";

pub fn audit_pk(tenant: &TenantId) -> String {
    format!("AU#{tenant}")
}

pub fn idempotency_pk(tenant: &TenantId, key: &str) -> String {
    format!("I#{tenant}#{key}")
}

pub const IDEMPOTENCY_SK: &str = "#IDEM";

/// A time series of the stats table: the tenant's (`*`) or one subscriber's, of one bucket
/// width; its items are `{start:012}` (unix seconds).
pub fn series_pk(tenant: &TenantId, subscriber: Option<&SubscriberId>, bucket: &str) -> String {
    match subscriber {
        Some(sub) => format!("TS#{tenant}#{sub}#{bucket}"),
        None => format!("TS#{tenant}#*#{bucket}"),
    }
}

/// A series item's sort key: its bucket's start, zero-padded so keys sort by time.
pub fn series_sk(start: i64) -> String {
    format!("{:012}", start.max(0))
}

/// An inbound source's record, found by its id alone.
pub fn source_pk(id: &SourceId) -> String {
    format!("SRC#{id}")
}

pub const SOURCE_SK: &str = "#SOURCE";
/// Sealed secrets are spread over this many partitions of each kind: subscribers' secret
/// documents in `SEALSUB#{nn}`, sources' secrets in `SEALSRC#{nn}`. A re-seal pass reads
/// them all with this many queries a kind, and only these partitions hold secrets, so IAM
/// grants each kind by its own prefix (the inbound function reads sources' only).
pub const SEALED_SHARDS: u32 = 16;
pub const SEALED_SUBSCRIBER_PREFIX: &str = "SEALSUB#";
pub const SEALED_SOURCE_PREFIX: &str = "SEALSRC#";
/// Both kinds' prefixes.
pub const SEALED_PREFIXES: [&str; 2] = [SEALED_SUBSCRIBER_PREFIX, SEALED_SOURCE_PREFIX];

/// The partition of a sealed item of kind `prefix` with sort key `sk`.
pub fn sealed_pk(prefix: &str, sk: &str) -> String {
    sealed_shard_pk(prefix, shard_of(sk, SEALED_SHARDS))
}

pub fn sealed_shard_pk(prefix: &str, shard: u32) -> String {
    format!("{prefix}{shard:02}")
}

/// A subscriber's sealed secret document: `SEALSUB#{nn}` / `{tenant}#{id}`.
pub fn sealed_subscriber_key(tenant: &TenantId, id: &SubscriberId) -> (String, String) {
    let sk = format!("{tenant}#{id}");
    (sealed_pk(SEALED_SUBSCRIBER_PREFIX, &sk), sk)
}

/// A source's sealed secret: `SEALSRC#{nn}` / `{tenant}#{id}`.
pub fn sealed_source_key(tenant: &TenantId, id: &SourceId) -> (String, String) {
    let sk = format!("{tenant}#{id}");
    (sealed_pk(SEALED_SOURCE_PREFIX, &sk), sk)
}

/// A tenant's list of sources: `T#{tenant}` / `SRC#{id}`.
pub const SOURCE_PREFIX: &str = "SRC#";

/// One inbound message remembered by the replay guard: one partition per message.
pub fn replay_pk(source: &SourceId, key: &str) -> String {
    format!("RP#{source}#{key}")
}

pub const REPLAY_SK: &str = "#REPLAY";

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use skyhook_domain::model::parse_time;

    #[test]
    fn route_partitions_cover_every_filter_that_matches() {
        let t = EventType::parse("order.item.added").unwrap();
        assert_eq!(
            route_filters_for(&t),
            ["*", "order.*", "order.item.*", "order.item.added"]
        );
        for f in [
            "*",
            "order.*",
            "order.item.*",
            "order.item.added",
            "order.item",
            "x.*",
        ] {
            let filter = EventTypeFilter::parse(f).unwrap();
            assert_eq!(
                filter.matches(&t),
                route_filters_for(&t).contains(&f.to_string()),
                "{f}"
            );
        }
    }

    #[test]
    fn covered_and_repeated_filters_need_no_route_of_their_own() {
        let parse = |v: &[&str]| {
            v.iter()
                .map(|f| EventTypeFilter::parse(f).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            route_filters_of(&parse(&[
                "order.created",
                "order.*",
                "invoice.paid",
                "order.*"
            ])),
            ["order.*", "invoice.paid"]
        );
        assert_eq!(route_filters_of(&parse(&["a.b", "*", "c.*"])), ["*"]);
        assert_eq!(
            route_filters_of(&parse(&["orders.x", "order.*"])),
            ["orders.x", "order.*"]
        );
    }

    #[test]
    fn ledger_keys_order_attempts_then_the_latest_and_events_by_time() {
        let e = EventId::new();
        let t = Utc::now();
        let h1 = history_sk(&e, 1, t);
        let h2 = history_sk(&e, 2, t);
        let last = latest_sk(&e);
        assert!(h1 < h2 && h2 < last);
        assert!(h1.starts_with(&delivery_prefix(&e)) && last.starts_with(&delivery_prefix(&e)));
        assert!(is_latest_sk(&last) && !is_latest_sk(&h2));
        assert_eq!(event_of_ledger_sk(&h2), Some(e.as_str()));
        // Everything of this event sorts below the bound of a later time, and above that of an
        // earlier one.
        assert!(last < ledger_upper_bound(t + chrono::Duration::milliseconds(1)));
        assert!(h1 > ledger_upper_bound(t - chrono::Duration::seconds(1)));
        let old = parse_time("2020-01-01T00:00:00Z").unwrap();
        assert!(ledger_upper_bound(old) < h1);
    }

    /// The partition arithmetic of `docs/dynamodb.md`: one tenant, 10,000 subscribers,
    /// 100,000 deliveries (10,000 events fanned out to 10 each). Every delivery-path write
    /// (the delivery item, the event item, a dead letter) lands on a key that holds one
    /// subscriber's writes or one shard of the tenant's.
    #[test]
    fn one_tenants_delivery_writes_spread_over_many_partitions() {
        let tenant = TenantId::parse("busy").unwrap();
        let subscribers: Vec<SubscriberId> = (0..10_000).map(|_| SubscriberId::new()).collect();
        let mut per_key: HashMap<String, usize> = HashMap::new();
        let mut subscribers_per_key: HashMap<String, std::collections::HashSet<usize>> =
            HashMap::new();
        for e in 0..10_000usize {
            let event = EventId::new();
            *per_key.entry(event_pk(&tenant, &event)).or_default() += 1;
            *per_key.entry(dead_letter_pk(&tenant, &event)).or_default() += 1;
            for k in 0..10 {
                let s = (e * 10 + k) % subscribers.len();
                let key = ledger_pk(&tenant, &subscribers[s]);
                *per_key.entry(key.clone()).or_default() += 1;
                subscribers_per_key.entry(key).or_default().insert(s);
            }
        }
        // Ledger partitions: one per subscriber, each with one subscriber's writes.
        assert!(subscribers_per_key.values().all(|s| s.len() == 1));
        assert_eq!(subscribers_per_key.len(), 10_000);
        // Event and dead-letter items: all shards used, none above twice the mean.
        for (prefix, count) in [("E#busy#", EVENT_SHARDS), ("DL#busy#", DEAD_LETTER_SHARDS)] {
            let shards: Vec<usize> = per_key
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, n)| *n)
                .collect();
            assert_eq!(shards.len(), count as usize, "{prefix}");
            let mean = 10_000 / count as usize;
            assert!(shards.iter().all(|&n| n < 2 * mean), "{prefix}: {shards:?}");
        }
        // The busiest key of all takes under 1 % of the tenant's 110,000 writes.
        let max = per_key.values().max().copied().unwrap_or(0);
        assert!(max < 1_100, "a key took {max} writes");
    }

    #[test]
    fn shards_are_stable_across_releases() {
        // A changed hash would strand every stored event in the wrong shard.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            shard_of("evt_01ARZ3NDEKTSV4RRFFQ69G5FAV", 16),
            shard_of("evt_01ARZ3NDEKTSV4RRFFQ69G5FAV", 16)
        );
    }
}
