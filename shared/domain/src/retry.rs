//! The retry policy: when a failed delivery is tried again, and when it is given up for the DLQ.
//!
//! Everything here is a pure function; randomness and "now" come in as arguments so tests can
//! pin them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest delay SQS can apply: a message's visibility timeout tops out at 12 hours.
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 60 * 60);

/// Roughly a day of retries, front-loaded so brief blips recover within seconds while a
/// receiver that is down overnight still gets its events.
pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";

/// Upper bound on schedule entries; more than this is a typo, not a policy.
pub const MAX_SCHEDULE_ENTRIES: usize = 50;

/// Spread of each delay, ±20 %, so that a receiver that comes back up is not hit by every
/// queued message in the same second.
pub const DEFAULT_JITTER: f64 = 0.2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error(
        "expected a duration: a whole number and a unit (ms, s, m, h or d), such as 5s, 250ms or 30m"
    )]
    Empty,
    #[error(
        "invalid duration {0:?}: expected a whole number and a unit (ms, s, m, h or d), such as 5s, 250ms or 30m"
    )]
    Invalid(String),
    #[error("duration {0:?} is too large")]
    TooLarge(String),
}

/// Parses `<integer><unit>` with unit `ms`, `s`, `m`, `h` or `d`; surrounding whitespace is ignored.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(DurationError::Invalid(s.to_owned())),
    };
    if number.is_empty() {
        return Err(DurationError::Invalid(s.to_owned()));
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(millis_per_unit))
        .map(Duration::from_millis)
        .ok_or_else(|| DurationError::TooLarge(s.to_owned()))
}

/// Writes a whole-millisecond duration in the largest unit that divides it, so that a parsed
/// schedule prints back the way people write it.
fn format_duration(d: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms.is_multiple_of(size) {
            return write!(f, "{}{unit}", ms / size);
        }
    }
    write!(f, "{ms}ms")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "retry schedule is empty; expected comma-separated delays such as {DEFAULT_RETRY_SCHEDULE}"
    )]
    Empty,
    #[error("retry schedule has {0} entries; at most {MAX_SCHEDULE_ENTRIES} are allowed")]
    TooManyEntries(usize),
    #[error("retry schedule entry {position} ({entry:?}): {source}")]
    InvalidEntry {
        position: usize,
        entry: String,
        source: DurationError,
    },
    #[error("retry schedule entry {position} ({entry:?}) must be greater than zero")]
    ZeroDelay { position: usize, entry: String },
    #[error(
        "retry schedule entry {position} ({entry:?}) exceeds 12h, the longest delay SQS can apply"
    )]
    TooLong { position: usize, entry: String },
    #[error(
        "retry schedule can keep a message waiting {} h (each delay doubled, as jitter or a receiver's Retry-After may), longer than the {} h a message may wait within the queue's 14-day retention; it would expire without being dead-lettered",
        .longest.as_secs() / 3600,
        MAX_TOTAL_WAIT.as_secs() / 3600
    )]
    OutlivesRetention { longest: Duration },
}

/// How long SQS keeps a message at most (the template's `MessageRetentionPeriod`): a
/// message's attempts all happen within it, since retries hide the same message again.
pub const QUEUE_RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The longest a schedule may keep a message waiting: the retention less a day for the
/// attempts themselves and the receives around them.
pub const MAX_TOTAL_WAIT: Duration = Duration::from_secs(13 * 24 * 60 * 60);

/// The delays before attempt 2, 3, …: always 1 to 50 of them, each in (0, 12 h].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    /// Parses comma-separated durations such as `5s, 5m, 30m`.
    pub fn parse(s: &str) -> Result<Self, ScheduleError> {
        if s.trim().is_empty() {
            return Err(ScheduleError::Empty);
        }
        let entries: Vec<&str> = s.split(',').map(str::trim).collect();
        if entries.len() > MAX_SCHEDULE_ENTRIES {
            return Err(ScheduleError::TooManyEntries(entries.len()));
        }
        let delays = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let position = i + 1;
                let delay =
                    parse_duration(entry).map_err(|source| ScheduleError::InvalidEntry {
                        position,
                        entry: entry.to_string(),
                        source,
                    })?;
                if delay.is_zero() {
                    Err(ScheduleError::ZeroDelay {
                        position,
                        entry: entry.to_string(),
                    })
                } else if delay > MAX_DELAY {
                    Err(ScheduleError::TooLong {
                        position,
                        entry: entry.to_string(),
                    })
                } else {
                    Ok(delay)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let schedule = Self { delays };
        let longest = schedule.longest_wait();
        if longest > MAX_TOTAL_WAIT {
            return Err(ScheduleError::OutlivesRetention { longest });
        }
        Ok(schedule)
    }

    /// The longest a message can wait between its attempts: every delay doubled (the top of
    /// the widest jitter band, and the cap on a receiver's `Retry-After`), each at most 12 h.
    pub fn longest_wait(&self) -> Duration {
        self.delays
            .iter()
            .map(|d| d.saturating_mul(2).min(MAX_DELAY))
            .sum()
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The first attempt plus one retry per delay.
    pub fn max_attempts(&self) -> u32 {
        // At most MAX_SCHEDULE_ENTRIES + 1, so the conversion cannot fail.
        u32::try_from(self.delays.len()).map_or(u32::MAX, |n| n.saturating_add(1))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        // A constant checked by `default_schedule_is_the_documented_one`; not outside input.
        Self::parse(DEFAULT_RETRY_SCHEDULE).expect("DEFAULT_RETRY_SCHEDULE is valid")
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, delay) in self.delays.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            format_duration(*delay, f)?;
        }
        Ok(())
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Make the message visible again after this long.
    Retry(Duration),
    /// That was the last attempt; let the message go to the DLQ.
    GiveUp,
}

/// A schedule plus jitter. `jitter` is a fraction: 0.2 spreads each delay by ±20 %; values
/// outside 0..=1 are clamped when deciding.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub schedule: RetrySchedule,
    pub jitter: f64,
}

impl RetryPolicy {
    pub fn new(schedule: RetrySchedule) -> Self {
        Self {
            schedule,
            jitter: DEFAULT_JITTER,
        }
    }

    pub fn with_jitter(self, jitter: f64) -> Self {
        Self {
            jitter: clamp_unit(jitter, 0.0),
            ..self
        }
    }

    /// Decides after the 1-based attempt `failed_attempt` failed (0 is treated as 1).
    ///
    /// `retry_after` is the receiver's `Retry-After`, which the caller passes only for 429 and
    /// 503. It is honoured without jitter, since the receiver asked for that moment, but capped
    /// at twice the scheduled delay so that one receiver cannot park a message for 12 hours.
    /// `unit_random` in 0..=1 picks the point within the jitter band.
    pub fn decide(
        &self,
        failed_attempt: u32,
        retry_after: Option<Duration>,
        unit_random: f64,
    ) -> RetryDecision {
        if failed_attempt >= self.schedule.max_attempts() {
            return RetryDecision::GiveUp;
        }
        let index = usize::try_from(failed_attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        let Some(&base) = self.schedule.delays.get(index) else {
            return RetryDecision::GiveUp;
        };
        let delay = match retry_after {
            Some(asked) => asked.min(base.saturating_mul(2)),
            None => {
                let jitter = clamp_unit(self.jitter, 0.0);
                let unit = clamp_unit(unit_random, 0.5);
                // factor is within [0, 2] and base within 12 h, so mul_f64 cannot overflow.
                base.mul_f64(1.0 + jitter * (2.0 * unit - 1.0))
            }
        };
        RetryDecision::Retry(delay.min(MAX_DELAY))
    }

    /// [`RetryPolicy::decide`] with a fresh random draw.
    pub fn decide_random(
        &self,
        failed_attempt: u32,
        retry_after: Option<Duration>,
    ) -> RetryDecision {
        self.decide(failed_attempt, retry_after, rand::random::<f64>())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(RetrySchedule::default())
    }
}

/// Clamps to 0..=1, with `fallback` for NaN (which `f64::clamp` would pass through).
fn clamp_unit(x: f64, fallback: f64) -> f64 {
    if x.is_nan() {
        fallback
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// The SQS `VisibilityTimeout` for a delay: whole seconds, rounded to nearest, within SQS's
/// 0..=43200.
pub fn visibility_timeout_secs(d: Duration) -> i32 {
    const MAX_SECS: u64 = 43_200;
    let rounded = d
        .as_secs()
        .saturating_add(u64::from(d.subsec_nanos() >= 500_000_000));
    // Clamped first, so it fits.
    i32::try_from(rounded.min(MAX_SECS)).unwrap_or(i32::MAX)
}

/// Reads a `Retry-After` value: delta-seconds, or an HTTP-date (a date already past means
/// "now"). Anything else is `None`, and the caller falls back to the schedule.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too big for u64 still means "much later"; the cap handles it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = parse_http_date(value)?;
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}

/// HTTP-date per RFC 9110: IMF-fixdate, plus the two obsolete forms recipients must still
/// accept (RFC 850 and asctime).
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    httpdate::parse_http_date(value)
        .ok()
        .map(DateTime::<Utc>::from)
}

/// The pauses between rounds of sending again what a batch call left undone (entries a
/// queue refused, items DynamoDB left unprocessed): none before the first round, then
/// `first`, growing by `factor` each round, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub factor: u32,
    pub max: Duration,
}

impl Backoff {
    /// DynamoDB's batch calls (its advice: back off exponentially): 40 ms, doubling, at
    /// most about 5 s.
    pub const DYNAMODB_BATCH: Backoff = Backoff {
        first: Duration::from_millis(40),
        factor: 2,
        max: Duration::from_millis(5120),
    };
    /// SQS batch sends: 50 ms, then four times longer each round.
    pub const QUEUE_SEND: Backoff = Backoff {
        first: Duration::from_millis(50),
        factor: 4,
        max: Duration::from_secs(10),
    };

    /// The pause before round `round` (0-based).
    pub fn delay(&self, round: u32) -> Duration {
        if round == 0 {
            return Duration::ZERO;
        }
        let growth = self.factor.saturating_pow(round - 1);
        self.first.saturating_mul(growth).min(self.max)
    }

    /// Waits [`Backoff::delay`] before round `round`.
    pub async fn pause_before(&self, round: u32) {
        let delay = self.delay(round);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn schedule(s: &str) -> RetrySchedule {
        RetrySchedule::parse(s).unwrap()
    }

    #[test]
    fn backoffs_start_after_the_first_round_grow_and_stop_at_their_cap() {
        let b = Backoff::DYNAMODB_BATCH;
        let ms: Vec<u128> = (0..10).map(|r| b.delay(r).as_millis()).collect();
        assert_eq!(ms, [0, 40, 80, 160, 320, 640, 1280, 2560, 5120, 5120]);
        let q = Backoff::QUEUE_SEND;
        let ms: Vec<u128> = (0..4).map(|r| q.delay(r).as_millis()).collect();
        assert_eq!(ms, [0, 50, 200, 800]);
        assert_eq!(q.delay(u32::MAX), q.max, "no overflow");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 30m "), Ok(secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(secs(86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        for bad in [
            "5", "s", "5 s", "5S", "-5s", "1.5s", "5sec", "5m5s", "+5s", "٣s",
        ] {
            assert!(
                matches!(parse_duration(bad), Err(DurationError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::TooLarge(_))
        ));
        assert!(matches!(
            parse_duration("18446744073709551615d"),
            Err(DurationError::TooLarge(_))
        ));
        assert!(
            parse_duration("5x")
                .unwrap_err()
                .to_string()
                .contains("250ms")
        );
    }

    #[test]
    fn default_schedule_is_the_documented_one() {
        let d = RetrySchedule::default();
        assert_eq!(d.to_string(), DEFAULT_RETRY_SCHEDULE);
        assert_eq!(
            d.delays(),
            [
                secs(5),
                secs(300),
                secs(1800),
                secs(7200),
                secs(18_000),
                secs(36_000),
                secs(36_000)
            ]
        );
        assert_eq!(d.max_attempts(), 8);
        assert_eq!(RetryPolicy::default().jitter, 0.2);
    }

    #[test]
    fn schedule_parsing() {
        assert_eq!(
            schedule(" 5s , 1m,1h ").delays(),
            [secs(5), secs(60), secs(3600)]
        );
        assert_eq!(schedule("12h").max_attempts(), 2);
        assert_eq!(schedule("720m").delays(), [MAX_DELAY]);
        assert_eq!(schedule(&vec!["1s"; 50].join(",")).max_attempts(), 51);
        // Canonical form picks the largest exact unit.
        assert_eq!(
            schedule("90s,60s,1500ms,3600000ms").to_string(),
            "90s,1m,1500ms,1h"
        );
        assert_eq!("5s,5m".parse::<RetrySchedule>().unwrap(), schedule("5s,5m"));
    }

    #[test]
    fn schedule_errors_name_the_entry() {
        assert_eq!(RetrySchedule::parse(""), Err(ScheduleError::Empty));
        assert_eq!(RetrySchedule::parse("  "), Err(ScheduleError::Empty));
        assert_eq!(
            RetrySchedule::parse(&vec!["1s"; 51].join(",")),
            Err(ScheduleError::TooManyEntries(51))
        );
        let err = RetrySchedule::parse("5s,5x,1m").unwrap_err();
        assert!(
            matches!(err, ScheduleError::InvalidEntry { position: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"5x\""), "{err}");
        assert!(matches!(
            RetrySchedule::parse("5s,,1m"),
            Err(ScheduleError::InvalidEntry { position: 2, .. })
        ));
        assert!(matches!(
            RetrySchedule::parse("5s,"),
            Err(ScheduleError::InvalidEntry { position: 2, .. })
        ));
        assert_eq!(
            RetrySchedule::parse("0s"),
            Err(ScheduleError::ZeroDelay {
                position: 1,
                entry: "0s".into()
            })
        );
        let err = RetrySchedule::parse("1h, 13h").unwrap_err();
        assert_eq!(
            err,
            ScheduleError::TooLong {
                position: 2,
                entry: "13h".into()
            }
        );
        assert!(err.to_string().contains("12h"));
        assert!(RetrySchedule::parse("43200001ms").is_err());
        assert!(RetrySchedule::parse("1d").is_err());
    }

    #[test]
    fn gives_up_after_the_last_attempt() {
        let policy = RetryPolicy::new(schedule("1s,2s,3s")).with_jitter(0.0);
        assert_eq!(policy.schedule.max_attempts(), 4);
        assert_eq!(policy.decide(1, None, 0.5), RetryDecision::Retry(secs(1)));
        assert_eq!(policy.decide(2, None, 0.5), RetryDecision::Retry(secs(2)));
        assert_eq!(policy.decide(3, None, 0.5), RetryDecision::Retry(secs(3)));
        assert_eq!(policy.decide(4, None, 0.5), RetryDecision::GiveUp);
        assert_eq!(policy.decide(5, Some(secs(1)), 0.5), RetryDecision::GiveUp);
        assert_eq!(policy.decide(u32::MAX, None, 0.5), RetryDecision::GiveUp);
        assert_eq!(policy.decide(0, None, 0.5), RetryDecision::Retry(secs(1)));
    }

    #[test]
    fn a_schedule_that_outlives_the_queue_retention_is_refused() {
        // 26 × 12 h = 13 days: the most a schedule may wait.
        let fits = vec!["12h"; 26].join(",");
        assert_eq!(schedule(&fits).longest_wait(), MAX_TOTAL_WAIT);
        let over = vec!["12h"; 27].join(",");
        assert!(matches!(
            RetrySchedule::parse(&over),
            Err(ScheduleError::OutlivesRetention { longest }) if longest == Duration::from_secs(27 * 12 * 3600)
        ));
        // Doubling counts: 6h doubles to 12h, so 27 of them are over too.
        let doubled = vec!["6h"; 27].join(",");
        assert!(RetrySchedule::parse(&doubled).is_err());
        assert!(RetrySchedule::parse(&vec!["6h"; 26].join(",")).is_ok());
        assert!(MAX_TOTAL_WAIT < QUEUE_RETENTION);
        assert!(RetrySchedule::default().longest_wait() < Duration::from_secs(3 * 24 * 3600));
    }

    #[test]
    fn jitter_spans_the_band_and_clamps_odd_randoms() {
        let policy = RetryPolicy::new(schedule("100s"));
        assert_eq!(policy.decide(1, None, 0.0), RetryDecision::Retry(secs(80)));
        assert_eq!(policy.decide(1, None, 0.5), RetryDecision::Retry(secs(100)));
        assert_eq!(policy.decide(1, None, 1.0), RetryDecision::Retry(secs(120)));
        assert_eq!(policy.decide(1, None, -3.0), RetryDecision::Retry(secs(80)));
        assert_eq!(policy.decide(1, None, 7.0), RetryDecision::Retry(secs(120)));
        assert_eq!(
            policy.decide(1, None, f64::NAN),
            RetryDecision::Retry(secs(100))
        );
        let wild = RetryPolicy {
            jitter: 5.0,
            ..policy.clone()
        };
        assert_eq!(wild.decide(1, None, 1.0), RetryDecision::Retry(secs(200)));
        assert_eq!(policy.clone().with_jitter(f64::NAN).jitter, 0.0);
    }

    #[test]
    fn delays_never_exceed_the_sqs_maximum() {
        let policy = RetryPolicy::new(schedule("12h,12h"));
        assert_eq!(policy.decide(1, None, 1.0), RetryDecision::Retry(MAX_DELAY));
        assert_eq!(
            policy.decide(1, Some(secs(100_000)), 0.5),
            RetryDecision::Retry(MAX_DELAY)
        );
    }

    #[test]
    fn retry_after_is_honoured_within_caps() {
        let policy = RetryPolicy::new(schedule("5s,5m,30m"));
        // Shorter than scheduled: the receiver knows best, and no jitter is added.
        assert_eq!(
            policy.decide(2, Some(secs(60)), 0.0),
            RetryDecision::Retry(secs(60))
        );
        assert_eq!(
            policy.decide(2, Some(Duration::ZERO), 1.0),
            RetryDecision::Retry(Duration::ZERO)
        );
        // Longer: capped at twice the scheduled delay.
        assert_eq!(
            policy.decide(1, Some(secs(3600)), 0.5),
            RetryDecision::Retry(secs(10))
        );
        assert_eq!(
            policy.decide(3, Some(secs(86_400)), 0.5),
            RetryDecision::Retry(secs(3600))
        );
    }

    #[test]
    fn decide_random_stays_in_band() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            match policy.decide_random(1, None) {
                RetryDecision::Retry(d) => assert!(d >= secs(4) && d <= secs(6), "{d:?}"),
                RetryDecision::GiveUp => panic!("attempt 1 of 8 must retry"),
            }
        }
        assert_eq!(policy.decide_random(8, None), RetryDecision::GiveUp);
    }

    #[test]
    fn visibility_timeouts() {
        assert_eq!(visibility_timeout_secs(Duration::ZERO), 0);
        assert_eq!(visibility_timeout_secs(Duration::from_millis(499)), 0);
        assert_eq!(visibility_timeout_secs(Duration::from_millis(500)), 1);
        assert_eq!(visibility_timeout_secs(Duration::from_millis(4_600)), 5);
        assert_eq!(visibility_timeout_secs(MAX_DELAY), 43_200);
        assert_eq!(
            visibility_timeout_secs(MAX_DELAY + Duration::from_millis(400)),
            43_200
        );
        assert_eq!(visibility_timeout_secs(Duration::MAX), 43_200);
    }

    #[test]
    fn retry_after_values() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:30 GMT", now),
            Some(secs(150))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Tue, 20 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:29:00 2015", now),
            Some(secs(60))
        );
        for junk in [
            "",
            "soon",
            "-5",
            "1.5",
            "+5",
            "120s",
            "Wed, 21 Oct 2015 07:30:30",
            "2015-10-21T07:30:30Z",
        ] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }

    proptest! {
        #[test]
        fn jitter_stays_within_twenty_percent(
            delay_ms in 1u64..=43_200_000,
            unit in -1.0f64..2.0,
        ) {
            let policy = RetryPolicy::new(RetrySchedule { delays: vec![Duration::from_millis(delay_ms)] });
            let base = Duration::from_millis(delay_ms).as_secs_f64();
            match policy.decide(1, None, unit) {
                RetryDecision::Retry(d) => {
                    let d = d.as_secs_f64();
                    prop_assert!(d >= base * 0.8 - 1e-6 && d <= (base * 1.2).min(MAX_DELAY.as_secs_f64()) + 1e-6);
                }
                RetryDecision::GiveUp => prop_assert!(false, "one delay means two attempts"),
            }
        }

        #[test]
        fn retry_after_never_beats_the_caps(
            attempt in 1u32..8,
            asked_secs in 0u64..10_000_000,
            unit in 0.0f64..=1.0,
        ) {
            let policy = RetryPolicy::default();
            let base = policy.schedule.delays()[attempt as usize - 1];
            let asked = secs(asked_secs);
            prop_assert_eq!(
                policy.decide(attempt, Some(asked), unit),
                RetryDecision::Retry(asked.min(base * 2).min(MAX_DELAY))
            );
        }

        #[test]
        fn display_round_trips(delays in proptest::collection::vec(1u64..=43_200_000, 1..=50)) {
            let original = RetrySchedule { delays: delays.into_iter().map(Duration::from_millis).collect() };
            let parsed = RetrySchedule::parse(&original.to_string());
            if original.longest_wait() > MAX_TOTAL_WAIT {
                let outlives = matches!(parsed, Err(ScheduleError::OutlivesRetention { .. }));
                prop_assert!(outlives);
            } else {
                prop_assert_eq!(parsed, Ok(original));
            }
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_duration(&s);
            let _ = RetrySchedule::parse(&s);
            let _ = parse_retry_after(&s, Utc::now());
        }
    }
}
