//! Delivery attempts over time, for the console's charts: per tenant and per subscriber,
//! counts of successful and failed attempts and a latency histogram in minute, hour and day
//! buckets. The stats consumer folds them from the ledger's change stream, a batch at a time,
//! as it folds the totals; a chart then reads one bounded range of one partition.
//!
//! Latency percentiles come from the histogram: [`LATENCY_BOUNDS_MS`] are the bins' upper
//! bounds (1-2-5 steps), and a percentile is interpolated inside its bin, so it is exact to
//! within the bin's width.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{SubscriberId, TenantId};

/// The bins' upper bounds in milliseconds; one more bin holds everything slower.
pub const LATENCY_BOUNDS_MS: [u64; 13] = [
    5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000,
];
/// The number of latency bins.
pub const BINS: usize = LATENCY_BOUNDS_MS.len() + 1;
/// Most points one series read returns: a chart reads at most this many items.
pub const MAX_POINTS: i64 = 240;

/// A bucket's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Minute, Bucket::Hour, Bucket::Day];

    pub fn secs(self) -> i64 {
        match self {
            Bucket::Minute => 60,
            Bucket::Hour => 3_600,
            Bucket::Day => 86_400,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "minute" => Some(Bucket::Minute),
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            _ => None,
        }
    }

    /// How long buckets of this width are kept: a few times the longest range one read
    /// covers ([`MAX_POINTS`] buckets).
    pub fn retention(self) -> Duration {
        Duration::from_secs(match self {
            Bucket::Minute => 2 * 86_400,
            Bucket::Hour => 60 * 86_400,
            Bucket::Day => 800 * 86_400,
        })
    }

    /// The start (unix seconds) of the bucket holding `t`.
    pub fn start_of(self, t: i64) -> i64 {
        t.div_euclid(self.secs()) * self.secs()
    }
}

/// One attempt as the ledger's stream shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptSample {
    pub started_at: DateTime<Utc>,
    pub success: bool,
    /// `None` when no response came (a timeout, a refused connection).
    pub latency_ms: Option<u64>,
}

/// What one bucket counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesCounts {
    pub success: u64,
    pub failure: u64,
    /// Attempts per latency bin (attempts without a latency are not in it).
    pub latency: [u64; BINS],
}

impl SeriesCounts {
    pub fn add(&mut self, sample: &AttemptSample) {
        if sample.success {
            self.success += 1;
        } else {
            self.failure += 1;
        }
        if let Some(ms) = sample.latency_ms {
            self.latency[bin_of(ms)] += 1;
        }
    }

    pub fn plus(mut self, other: &SeriesCounts) -> Self {
        self.success += other.success;
        self.failure += other.failure;
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            *a += b;
        }
        self
    }

    /// The `q` quantile (0 to 1) of the latencies, interpolated inside its bin; `None`
    /// without any latency.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the wanted sample, 1-based, as nearest-rank does.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, &count) in self.latency.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if seen + count >= rank {
                let lower = if bin == 0 {
                    0
                } else {
                    LATENCY_BOUNDS_MS[bin - 1]
                };
                let Some(&upper) = LATENCY_BOUNDS_MS.get(bin) else {
                    // Slower than the last bound: reported as that bound.
                    return Some(lower);
                };
                let within = (rank - seen) as f64 / count as f64;
                return Some(lower + ((upper - lower) as f64 * within).round() as u64);
            }
            seen += count;
        }
        None
    }
}

/// The bin of a latency.
pub fn bin_of(ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|&bound| ms <= bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// One bucket's change, folded from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesChange {
    pub tenant: TenantId,
    /// `None`: the tenant's series.
    pub subscriber: Option<SubscriberId>,
    pub bucket: Bucket,
    /// The bucket's start, unix seconds.
    pub start: i64,
    pub delta: SeriesCounts,
}

/// One change per (tenant or subscriber, bucket width, bucket) the attempts fall in.
pub fn fold(attempts: &[(TenantId, SubscriberId, AttemptSample)]) -> Vec<SeriesChange> {
    type Key = (TenantId, Option<SubscriberId>, Bucket, i64);
    let mut out: BTreeMap<Key, SeriesCounts> = BTreeMap::new();
    for (tenant, subscriber, sample) in attempts {
        let t = sample.started_at.timestamp();
        for bucket in Bucket::ALL {
            for who in [None, Some(subscriber.clone())] {
                out.entry((tenant.clone(), who, bucket, bucket.start_of(t)))
                    .or_default()
                    .add(sample);
            }
        }
    }
    out.into_iter()
        .map(
            |((tenant, subscriber, bucket, start), delta)| SeriesChange {
                tenant,
                subscriber,
                bucket,
                start,
                delta,
            },
        )
        .collect()
}

/// One point of a chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub start: i64,
    pub counts: SeriesCounts,
}

/// Why a range cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("since must be before until")]
    Empty,
    #[error(
        "the range holds {0} {1} buckets; a series has at most {MAX_POINTS}: use a wider bucket or a shorter range"
    )]
    TooLong(i64, &'static str),
}

/// The bucket starts from the one holding `since` to the one holding `until`, checked
/// against [`MAX_POINTS`].
pub fn range(bucket: Bucket, since: i64, until: i64) -> Result<(i64, i64), RangeError> {
    if since > until {
        return Err(RangeError::Empty);
    }
    let (first, last) = (bucket.start_of(since), bucket.start_of(until));
    let points = (last - first) / bucket.secs() + 1;
    if points > MAX_POINTS {
        return Err(RangeError::TooLong(points, bucket.as_str()));
    }
    Ok((first, last))
}

/// Every bucket from `first` to `last`, with what was stored for it (zero where nothing
/// was), so a chart has no gaps to guess at.
pub fn dense(bucket: Bucket, first: i64, last: i64, stored: &[(i64, SeriesCounts)]) -> Vec<Point> {
    let found: BTreeMap<i64, SeriesCounts> = stored.iter().copied().collect();
    (0..)
        .map(|i| first + i * bucket.secs())
        .take_while(|start| *start <= last)
        .map(|start| Point {
            start,
            counts: found.get(&start).copied().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: i64, success: bool, ms: Option<u64>) -> AttemptSample {
        AttemptSample {
            started_at: DateTime::from_timestamp(t, 0).unwrap(),
            success,
            latency_ms: ms,
        }
    }

    #[test]
    fn attempts_fold_into_each_width_for_the_tenant_and_the_subscriber() {
        let t = TenantId::default_tenant();
        let (a, b) = (SubscriberId::new(), SubscriberId::new());
        let base = 20_781 * 86_400; // the start of a day, so of an hour and a minute too
        let folded = fold(&[
            (t.clone(), a.clone(), sample(base + 5, true, Some(40))),
            (t.clone(), a.clone(), sample(base + 50, false, None)),
            (t.clone(), b.clone(), sample(base + 65, true, Some(400))),
        ]);
        let get = |who: Option<&SubscriberId>, bucket: Bucket, start: i64| {
            folded
                .iter()
                .find(|c| c.subscriber.as_ref() == who && c.bucket == bucket && c.start == start)
                .map(|c| c.delta)
        };
        let a_minute = get(Some(&a), Bucket::Minute, base).unwrap();
        assert_eq!((a_minute.success, a_minute.failure), (1, 1));
        assert_eq!(
            a_minute.latency.iter().sum::<u64>(),
            1,
            "no latency, no bin"
        );
        let b_minute = get(Some(&b), Bucket::Minute, base + 60).unwrap();
        assert_eq!(b_minute.success, 1);
        let tenant_hour = get(None, Bucket::Hour, base).unwrap();
        assert_eq!((tenant_hour.success, tenant_hour.failure), (2, 1));
        assert_eq!(get(None, Bucket::Day, base).unwrap().success, 2);
        // tenant: 2 minutes + hour + day; a: 1 minute + hour + day; b: the same.
        assert_eq!(folded.len(), 4 + 3 + 3);
    }

    #[test]
    fn percentiles_fall_inside_the_right_bin() {
        let mut c = SeriesCounts::default();
        for ms in [3, 8, 15, 40, 90, 180, 450, 900, 1_800, 4_000] {
            c.add(&sample(0, true, Some(ms)));
        }
        let p50 = c.percentile(0.5).unwrap();
        assert!((50..=100).contains(&p50), "{p50}");
        let p95 = c.percentile(0.95).unwrap();
        assert!((2_000..=5_000).contains(&p95), "{p95}");
        assert_eq!(SeriesCounts::default().percentile(0.5), None);
        let mut slow = SeriesCounts::default();
        slow.add(&sample(0, false, Some(120_000)));
        assert_eq!(slow.percentile(0.5), Some(60_000), "beyond the last bound");
        assert_eq!(bin_of(5), 0);
        assert_eq!(bin_of(6), 1);
        assert_eq!(bin_of(u64::MAX), BINS - 1);
    }

    #[test]
    fn ranges_are_bounded_and_dense() {
        assert_eq!(range(Bucket::Minute, 125, 600), Ok((120, 600)));
        assert_eq!(range(Bucket::Minute, 600, 125), Err(RangeError::Empty));
        assert!(matches!(
            range(Bucket::Minute, 0, 240 * 60),
            Err(RangeError::TooLong(241, "minute"))
        ));
        assert!(range(Bucket::Minute, 0, 239 * 60).is_ok());
        let mut one = SeriesCounts::default();
        one.add(&sample(0, true, Some(1)));
        let points = dense(Bucket::Hour, 0, 3 * 3600, &[(3600, one)]);
        assert_eq!(points.len(), 4);
        assert_eq!(points[1].counts.success, 1);
        assert_eq!(points[2].counts, SeriesCounts::default());
        assert_eq!(Bucket::start_of(Bucket::Day, -1), -86_400);
    }
}
