//! Property-based fuzzing of the domain's parsers of outside input: SQS delivery messages,
//! subscriber URLs, event types and filters, durations and retry schedules, `Retry-After`,
//! signing secrets, ids, and signature verification. None may panic, every refusal must be
//! the typed error a reference model predicts, and what parses must round-trip.
//!
//! Every test is named `fuzz_…` (`make fuzz` selects them). Case counts default low enough
//! for `make test`; `PROPTEST_CASES` raises them, and failures are never persisted to files.

use skyhook_domain::fuzzing::{config, is_snake_case, json_value};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::Value;

use skyhook_domain::event_type::{EventType, EventTypeError, EventTypeFilter, MAX_EVENT_TYPE_LEN};
use skyhook_domain::ids::{ApiKeyId, EventId, IdError, SubscriberId, TenantId};
use skyhook_domain::jq::{JqError, MAX_NESTING, MAX_PROGRAM_BYTES, Program};
use skyhook_domain::model::{
    DeliveryMessage, DeliveryState, DisabledReason, MASKED_VALUE, MESSAGE_FORMAT_VERSION, Outcome,
    Role, format_time, parse_time,
};
use skyhook_domain::retry::{
    DurationError, MAX_DELAY, MAX_SCHEDULE_ENTRIES, MAX_TOTAL_WAIT, RetrySchedule, ScheduleError,
    parse_duration, parse_retry_after,
};
use skyhook_domain::secret::{SecretError, SigningSecret};
use skyhook_domain::signing::{
    LegacyScheme, SignatureScheme, VerifyError, legacy_signature, sign, verify,
    verify_legacy_with_tolerance, verify_with_tolerance,
};
use skyhook_domain::url::{MAX_URL_LEN, SubscriberUrl, UrlPolicy, is_non_global_ip, mask_query};

/// JSON text `serde_json::Value` cannot hold: numbers past every integer and float type,
/// and nesting far past serde_json's recursion limit.
fn raw_json_oddity() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e999".to_string()),
        Just("-1e999".to_string()),
        Just("-0".to_string()),
        Just("1.0".to_string()),
        Just("256".to_string()),
        Just("-1".to_string()),
        Just("4294967296".to_string()),
        Just("18446744073709551616".to_string()),
        Just("123456789012345678901234567890123456789".to_string()),
        Just("\"\\ud800\"".to_string()),
        Just("\"\\u0000\"".to_string()),
        (1usize..400).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        prop_oneof![Just(10_000usize), Just(100_000usize)].prop_map(|n| format!(
            "{}1{}",
            "[".repeat(n),
            "]".repeat(n)
        )),
        (1usize..200).prop_map(|n| format!("{}0{}", "{\"a\":".repeat(n), "}".repeat(n))),
    ]
}

// ---------------------------------------------------------------------------------------
// DeliveryMessage::from_json
// ---------------------------------------------------------------------------------------

/// RFC 3339 times, with the edge years and offsets that move a time across a year boundary.
fn rfc3339_text() -> impl Strategy<Value = String> {
    let year = prop_oneof![
        Just(0u32),
        Just(1),
        Just(1970),
        Just(2026),
        Just(9999),
        0u32..=9999
    ];
    (
        year,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        prop_oneof![Just(String::new()), "\\.[0-9]{1,9}"],
        prop_oneof![
            Just("Z".to_string()),
            Just("z".to_string()),
            (any::<bool>(), 0u32..24, 0u32..60)
                .prop_map(|(plus, h, m)| format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' })),
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

/// A JSON fragment for one field of a delivery message: right most of the time, otherwise
/// the wrong type, an extreme number, any JSON at all.
fn field(valid: BoxedStrategy<String>) -> BoxedStrategy<Option<String>> {
    prop_oneof![
        6 => valid.prop_map(Some),
        1 => Just(None),
        1 => json_value(4, 6).prop_map(|v| Some(v.to_string())),
        1 => raw_json_oddity().prop_map(Some),
    ]
    .boxed()
}

fn quoted(s: impl Strategy<Value = String> + 'static) -> BoxedStrategy<String> {
    s.prop_map(|s| Value::String(s).to_string()).boxed()
}

fn delivery_message_text() -> impl Strategy<Value = String> {
    let fields = (
        field(
            prop_oneof![
                Just("1".to_string()),
                (0u32..300).prop_map(|n| n.to_string())
            ]
            .boxed(),
        ),
        field(quoted(prop_oneof![
            "evt_[0-9A-Za-z]{1,64}",
            "(evt_|sub_)?\\PC{0,70}"
        ])),
        field(quoted(prop_oneof![
            "[a-z0-9][a-z0-9_-]{0,62}",
            "\\PC{0,70}"
        ])),
        field(quoted(prop_oneof![
            "sub_[0-9A-Za-z]{1,64}",
            "(sub_|evt_)?\\PC{0,70}"
        ])),
        field(quoted(prop_oneof![
            "[A-Za-z0-9_-]{1,10}(\\.[A-Za-z0-9_-]{1,10}){0,4}",
            "\\PC{0,140}"
        ])),
        field(quoted(prop_oneof![rfc3339_text(), "\\PC{0,40}"])),
        field(json_value(4, 6).prop_map(|v| v.to_string()).boxed()),
        field(quoted(any::<String>())),
        field(prop_oneof![any::<u32>().prop_map(|n| n.to_string()), Just("0".into())].boxed()),
    );
    (
        fields,
        prop::option::of(("\\PC{0,12}", json_value(4, 6))),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |((v, e, t, s, ty, ts, d, c, p), extra, duplicate, spaces)| {
                let names = [
                    "v",
                    "event_id",
                    "tenant",
                    "subscriber_id",
                    "type",
                    "timestamp",
                    "data",
                    "correlation_id",
                    "prior_attempts",
                ];
                let mut parts: Vec<String> = names
                    .iter()
                    .zip([v, e, t, s, ty, ts, d, c, p])
                    .filter_map(|(k, v)| v.map(|v| format!("\"{k}\":{v}")))
                    .collect();
                if duplicate && let Some(first) = parts.first().cloned() {
                    parts.push(first);
                }
                if let Some((k, v)) = extra {
                    parts.push(format!("{}:{v}", Value::String(k)));
                }
                let sep = if spaces { " ,\n\t" } else { "," };
                format!("{{{}}}", parts.join(sep))
            },
        )
}

/// What a parsed message must hold, checked after it goes out through `to_json` and back.
fn assert_same_message(a: &DeliveryMessage, b: &DeliveryMessage) -> Result<(), TestCaseError> {
    prop_assert_eq!(&a.event_id, &b.event_id);
    prop_assert_eq!(&a.tenant, &b.tenant);
    prop_assert_eq!(&a.subscriber_id, &b.subscriber_id);
    prop_assert_eq!(&a.event_type, &b.event_type);
    // Written with millisecond precision.
    prop_assert_eq!(
        a.timestamp.timestamp_millis(),
        b.timestamp.timestamp_millis()
    );
    prop_assert_eq!(a.data.get(), b.data.get());
    prop_assert_eq!(&a.correlation_id, &b.correlation_id);
    prop_assert_eq!(a.prior_attempts, b.prior_attempts);
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary text: refused with a message, or a version-1 message that round-trips.
    #[test]
    fn fuzz_delivery_message_from_arbitrary_text(s in prop_oneof![
        any::<String>(),
        raw_json_oddity(),
        json_value(4, 6).prop_map(|v| v.to_string()),
    ]) {
        match DeliveryMessage::from_json(&s) {
            Ok(m) => prop_assert_eq!(m.v, MESSAGE_FORMAT_VERSION),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    /// Right keys with wrong types, extreme numbers, unicode, nesting, duplicates and extra
    /// keys. What parses must come back from `to_json` as the same message with the same
    /// webhook body, since the delivery function and the redrive read `to_json`'s output.
    #[test]
    fn fuzz_delivery_message_structured(s in delivery_message_text()) {
        match DeliveryMessage::from_json(&s) {
            Ok(m) => {
                prop_assert_eq!(m.v, MESSAGE_FORMAT_VERSION);
                let json = m.to_json();
                let back = DeliveryMessage::from_json(&json);
                prop_assert!(back.is_ok(), "to_json wrote {json:?}, which does not parse back: {back:?}");
                let back = back.unwrap();
                assert_same_message(&m, &back)?;
                prop_assert_eq!(m.webhook_body(), back.webhook_body());
                // `data` may nest deeper than a `Value` parser allows, so the envelope is
                // checked as text.
                let body = String::from_utf8(m.webhook_body()).unwrap();
                let head = format!("{{\"type\":{},\"timestamp\":", Value::String(m.event_type.to_string()));
                prop_assert!(body.starts_with(&head), "{body}");
                prop_assert!(body.ends_with(&format!(",\"data\":{}}}", m.data.get())), "{body}");
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    /// Times that parse are written back (with ms precision) as the same instant, in a form
    /// that parses again.
    #[test]
    fn fuzz_time_round_trip(s in prop_oneof![rfc3339_text(), "\\PC{0,40}"]) {
        if let Some(t) = parse_time(&s) {
            let written = format_time(t);
            prop_assert_eq!(
                parse_time(&written).map(|b| b.timestamp_millis()),
                Some(t.timestamp_millis()),
                "{:?} parsed, but its written form {:?} does not", s, written
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// SubscriberUrl
// ---------------------------------------------------------------------------------------

fn url_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,10}\\.(com|org|io|net)",
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,3}",
        Just("localhost".to_string()),
        Just("LOCALHOST.".to_string()),
        Just("api.localhost".to_string()),
        Just("localhost%2e".to_string()),
        Just("%6c%6f%63%61%6c%68%6f%73%74".to_string()),
        Just("0".to_string()),
        Just("0x7f.1".to_string()),
        Just("2130706433".to_string()),
        Just("017700000001".to_string()),
        Just("127.1".to_string()),
        Just("\u{ff11}\u{ff12}\u{ff17}.0.0.1".to_string()),
        Just("[::]".to_string()),
        Just("[::1]".to_string()),
        Just("[::ffff:127.0.0.1]".to_string()),
        Just("[::ffff:7f00:1]".to_string()),
        Just("[64:ff9b::a9fe:a9fe]".to_string()),
        Just("[2002:7f00:1::]".to_string()),
        Just("[fe80::1%25eth0]".to_string()),
        Just("xn--nxasmq6b.com".to_string()),
        Just("bücher.example".to_string()),
        any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
        any::<u32>().prop_map(|v| format!("[::ffff:{}]", std::net::Ipv4Addr::from(v))),
        "\\PC{0,20}",
    ]
}

fn url_text() -> impl Strategy<Value = String> {
    let structured = (
        prop_oneof![
            Just("https://"),
            Just("http://"),
            Just("HTTPS://"),
            Just("ftp://"),
            Just("javascript:"),
            Just("https:"),
            Just("https:///"),
            Just(""),
        ],
        prop::option::of(prop_oneof![
            "[a-z]{1,5}@",
            "[a-z]{1,5}:[a-z]{0,5}@",
            Just("@".to_string())
        ]),
        url_host(),
        prop::option::of(prop_oneof![
            (0u32..70_000).prop_map(|p| format!(":{p}")),
            Just(":".to_string()),
            Just(":99999999999".to_string()),
        ]),
        "(/\\PC{0,16}){0,3}",
        prop::option::of("\\?\\PC{0,24}"),
        prop::option::of("#\\PC{0,8}"),
    )
        .prop_map(|(scheme, user, host, port, path, query, frag)| {
            format!(
                "{scheme}{}{host}{}{path}{}{}",
                user.unwrap_or_default(),
                port.unwrap_or_default(),
                query.unwrap_or_default(),
                frag.unwrap_or_default()
            )
        });
    prop_oneof![
        8 => structured,
        2 => any::<String>(),
        1 => (0usize..64).prop_map(|n| format!("https://example.com/{}", "%41".repeat(MAX_URL_LEN / 3 - 10 + n))),
        1 => (0usize..64).prop_map(|n| format!("https://example.com/{}", "é".repeat(MAX_URL_LEN / 6 - 5 + n))),
    ]
}

fn check_url(input: &str, policy: UrlPolicy) -> Result<(), TestCaseError> {
    match SubscriberUrl::parse(input, policy) {
        Ok(u) => {
            let url = u.as_url();
            prop_assert!(u.as_str().len() <= MAX_URL_LEN);
            prop_assert!(
                url.scheme() == "https" || (policy.allow_insecure && url.scheme() == "http")
            );
            prop_assert!(url.username().is_empty() && url.password().is_none());
            prop_assert!(url.fragment().is_none());
            let host = url.host();
            prop_assert!(host.is_some());
            if !policy.allow_insecure {
                match host.unwrap() {
                    url::Host::Domain(d) => {
                        let d = d.trim_end_matches('.').to_ascii_lowercase();
                        prop_assert!(
                            d != "localhost" && !d.ends_with(".localhost"),
                            "{input:?} reached {d}"
                        );
                    }
                    url::Host::Ipv4(ip) => {
                        prop_assert!(!is_non_global_ip(ip.into()), "{input:?} reached {ip}")
                    }
                    url::Host::Ipv6(ip) => {
                        prop_assert!(!is_non_global_ip(ip.into()), "{input:?} reached {ip}")
                    }
                }
            }
            // Normalised once: the stored form parses to itself.
            prop_assert_eq!(SubscriberUrl::parse(u.as_str(), policy), Ok(u.clone()));
            prop_assert_eq!(u.to_string(), u.as_str());
        }
        Err(e) => {
            prop_assert!(is_snake_case(e.code()), "{:?}", e.code());
            prop_assert!(!e.to_string().is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// Both policies: what is accepted is https (or http in local mode), without credentials
    /// or fragment, within the length limit, normalised; in strict mode never a loopback,
    /// private or otherwise non-public literal address or localhost name. Strict accepts
    /// nothing local mode refuses.
    #[test]
    fn fuzz_subscriber_url(s in url_text()) {
        check_url(&s, UrlPolicy::STRICT)?;
        check_url(&s, UrlPolicy::LOCAL)?;
        if let Ok(strict) = SubscriberUrl::parse(&s, UrlPolicy::STRICT) {
            prop_assert_eq!(SubscriberUrl::parse(&s, UrlPolicy::LOCAL), Ok(strict));
        }
        // JSON (stored records) reads with the local policy.
        let json = Value::String(s.clone()).to_string();
        prop_assert_eq!(
            serde_json::from_str::<SubscriberUrl>(&json).ok(),
            SubscriberUrl::parse(&s, UrlPolicy::LOCAL).ok()
        );
    }

    /// Query values are masked for non-admin readers: a token never survives.
    #[test]
    fn fuzz_mask_query_hides_values(
        base in url_text(),
        name in "[a-z]{1,8}",
        token in "[A-Za-z0-9]{16,24}",
    ) {
        let _ = mask_query(&base);
        let url = format!("https://hooks.example.com/p?{name}={token}&x={token}");
        let masked = mask_query(&url);
        prop_assert!(!masked.contains(&token), "{masked}");
        prop_assert!(masked.contains(MASKED_VALUE));
        if let Ok(u) = url::Url::parse(&base)
            && u.query().is_some()
        {
            let masked = mask_query(&base);
            let m = url::Url::parse(&masked);
            prop_assert!(m.is_ok(), "{masked:?}");
            for (k, v) in m.unwrap().query_pairs() {
                prop_assert!(v == MASKED_VALUE || (v.is_empty() && k == MASKED_VALUE), "{base:?} -> {masked:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Event types and filters
// ---------------------------------------------------------------------------------------

/// The grammar, written out again: the error `EventType::parse` must give, if any.
fn event_type_model(s: &str) -> Result<(), EventTypeError> {
    if s.is_empty() {
        return Err(EventTypeError::Empty);
    }
    if s.len() > MAX_EVENT_TYPE_LEN {
        return Err(EventTypeError::TooLong);
    }
    for seg in s.split('.') {
        if seg.is_empty() {
            return Err(EventTypeError::EmptySegment);
        }
        if let Some(c) = seg
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(if c == '*' {
                EventTypeError::MisplacedWildcard
            } else {
                EventTypeError::InvalidChar(c)
            });
        }
    }
    Ok(())
}

fn event_type_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{1,10}(\\.[A-Za-z0-9_-]{1,10}){0,5}",
        "[a-z*.]{0,12}",
        "[A-Za-z0-9_.*-]{0,140}",
        "([a-z]{1,3}\\.){0,3}(\\*|[a-z]{1,3})(\\.\\*)?",
        "\\PC{0,140}",
        any::<String>(),
        (120usize..135).prop_map(|n| "a".repeat(n)),
        (120usize..135).prop_map(|n| format!("{}.*", "a".repeat(n))),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    /// Every refusal is the variant the grammar predicts; accepted types and filters
    /// round-trip through text and JSON; a filter matches by whole segments.
    #[test]
    fn fuzz_event_types_and_filters(s in event_type_text(), probe in event_type_text()) {
        let parsed = EventType::parse(&s);
        prop_assert_eq!(parsed.clone().map(|_| ()), event_type_model(&s));
        if let Ok(t) = &parsed {
            prop_assert_eq!(t.as_str(), s.as_str());
            prop_assert_eq!(s.parse::<EventType>(), Ok(t.clone()));
            let json = serde_json::to_string(t).unwrap();
            prop_assert_eq!(serde_json::from_str::<EventType>(&json).ok(), Some(t.clone()));
        }
        let filter = EventTypeFilter::parse(&s);
        let expected = if s == "*" {
            Ok(())
        } else if s.len() > MAX_EVENT_TYPE_LEN {
            Err(EventTypeError::TooLong)
        } else if let Some(prefix) = s.strip_suffix(".*") {
            event_type_model(prefix)
        } else {
            event_type_model(&s)
        };
        prop_assert_eq!(filter.clone().map(|_| ()), expected);
        for e in [parsed.as_ref().err(), filter.as_ref().err()].into_iter().flatten() {
            prop_assert!(!e.to_string().is_empty());
        }
        if let Ok(f) = &filter {
            prop_assert_eq!(EventTypeFilter::parse(f.as_str()), Ok(f.clone()));
            let json = serde_json::to_string(f).unwrap();
            prop_assert_eq!(serde_json::from_str::<EventTypeFilter>(&json).ok(), Some(f.clone()));
            if let Ok(t) = EventType::parse(&probe) {
                let expected = if s == "*" {
                    true
                } else if let Some(prefix) = s.strip_suffix(".*") {
                    t.as_str().starts_with(&format!("{prefix}."))
                } else {
                    t.as_str() == s
                };
                prop_assert_eq!(f.matches(&t), expected, "{} vs {}", s, probe);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Durations, retry schedules, Retry-After
// ---------------------------------------------------------------------------------------

/// `parse_duration`'s grammar written out again.
fn duration_model(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let per: u128 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(DurationError::Invalid(s.to_owned())),
    };
    if n.is_empty() {
        return Err(DurationError::Invalid(s.to_owned()));
    }
    // Digits only, so the only way to fail is size.
    match n.parse::<u128>().ok().map(|n| n * per) {
        Some(ms) if ms <= u128::from(u64::MAX) => Ok(Duration::from_millis(ms as u64)),
        _ => Err(DurationError::TooLarge(s.to_owned())),
    }
}

fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t]{0,2}[0-9]{1,6}(ms|s|m|h|d)[ \t]{0,2}",
        "[0-9]{0,25}(ms|s|m|h|d|S|sec|x|)",
        "[-+]?[0-9.]{0,6}[a-z]{0,3}",
        "\\PC{0,12}",
        any::<String>(),
    ]
}

/// Schedules: mostly whole delays (so that accepted ones, zero, over-12 h and over-retention
/// ones all come up), sometimes anything; a few entries, or around the 50-entry limit.
fn schedule_entries() -> impl Strategy<Value = Vec<String>> {
    let entry = prop_oneof![
        6 => "[0-9]{1,3}(ms|s|m|h)",
        1 => "(1[2-9]|[2-9][0-9])h|[1-9]d|0s|720m|43200s",
        2 => duration_text(),
    ];
    prop_oneof![
        4 => prop::collection::vec(entry.clone(), 0..8),
        1 => prop::collection::vec(entry, 24..56),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn fuzz_parse_duration(s in duration_text()) {
        let got = parse_duration(&s);
        prop_assert_eq!(&got, &duration_model(&s));
        if let Err(e) = got {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Accepted schedules hold 1 to 50 delays in (0, 12 h] that fit the queue's retention
    /// and print back to themselves; each refusal names the entry the model says failed.
    #[test]
    fn fuzz_retry_schedule(entries in schedule_entries(), sep in prop_oneof![Just(","), Just(", "), Just(" ,")]) {
        let s = entries.join(sep);
        match RetrySchedule::parse(&s) {
            Ok(schedule) => {
                let delays = schedule.delays();
                prop_assert!((1..=MAX_SCHEDULE_ENTRIES).contains(&delays.len()));
                prop_assert!(delays.iter().all(|d| !d.is_zero() && *d <= MAX_DELAY));
                prop_assert!(schedule.longest_wait() <= MAX_TOTAL_WAIT);
                prop_assert_eq!(schedule.max_attempts() as usize, delays.len() + 1);
                prop_assert_eq!(RetrySchedule::parse(&schedule.to_string()), Ok(schedule.clone()));
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                let parts: Vec<&str> = s.split(',').map(str::trim).collect();
                match e {
                    ScheduleError::Empty => prop_assert!(s.trim().is_empty()),
                    ScheduleError::TooManyEntries(n) => {
                        prop_assert_eq!(n, parts.len());
                        prop_assert!(n > MAX_SCHEDULE_ENTRIES);
                    }
                    ScheduleError::InvalidEntry { position, entry, source } => {
                        prop_assert_eq!(entry.as_str(), parts[position - 1]);
                        prop_assert_eq!(Err(source), duration_model(&entry));
                    }
                    ScheduleError::ZeroDelay { position, entry } => {
                        prop_assert_eq!(entry.as_str(), parts[position - 1]);
                        prop_assert_eq!(duration_model(&entry), Ok(Duration::ZERO));
                    }
                    ScheduleError::TooLong { position, entry } => {
                        prop_assert_eq!(entry.as_str(), parts[position - 1]);
                        prop_assert!(duration_model(&entry).unwrap() > MAX_DELAY);
                    }
                    ScheduleError::OutlivesRetention { longest } => prop_assert!(longest > MAX_TOTAL_WAIT),
                }
            }
        }
    }

    /// `Retry-After`: delta-seconds, HTTP-dates in three forms, junk; any clock, even the
    /// ends of chrono's range.
    #[test]
    fn fuzz_parse_retry_after(
        value in prop_oneof![
            "[ ]?[0-9]{1,30}[ ]?",
            "(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} (Jan|Feb|Oct|Dec|Foo) [0-9]{1,6} [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2} (GMT|UTC)",
            "(Monday|Sunday|Wednesday), [0-9]{2}-(Jan|Oct)-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
            "(Sun|Wed) (Nov|Oct) [ 0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{1,6}",
            "\\PC{0,40}",
            any::<String>(),
        ],
        now in prop_oneof![
            Just(DateTime::<Utc>::MIN_UTC),
            Just(DateTime::<Utc>::MAX_UTC),
            (-62_000_000_000i64..250_000_000_000).prop_map(|s| Utc.timestamp_opt(s, 0).single().unwrap()),
        ],
    ) {
        let got = parse_retry_after(&value, now);
        let trimmed = value.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let secs = trimmed.parse::<u64>().unwrap_or(u64::MAX);
            prop_assert_eq!(got, Some(Duration::from_secs(secs)));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Signing secrets and signatures
// ---------------------------------------------------------------------------------------

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn secret_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80)
            .prop_map(|k| format!("whsec_{}", STANDARD.encode(k))),
        prop::collection::vec(any::<u8>(), 0..80)
            .prop_map(|k| format!("whsec_{}", STANDARD.encode(k).trim_end_matches('='))),
        prop::collection::vec(any::<u8>(), 0..80)
            .prop_map(|k| format!("whsec_{}", general_purpose::URL_SAFE.encode(k))),
        "(whsec_|WHSEC_|whsec|)[A-Za-z0-9+/=_-]{0,100}",
        "(whsec_)?\\PC{0,100}",
    ]
}

fn key_secret() -> impl Strategy<Value = SigningSecret> {
    prop::collection::vec(any::<u8>(), 24..=64)
        .prop_map(|k| SigningSecret::parse(&format!("whsec_{}", STANDARD.encode(k))).unwrap())
}

proptest! {
    #![proptest_config(config(1024))]

    /// Each refusal is the variant the input calls for, and no message or `Debug` output
    /// carries any of the secret's text.
    #[test]
    fn fuzz_signing_secret(s in secret_text()) {
        let encoded = s.strip_prefix("whsec_");
        let expected = match encoded {
            None => Err(SecretError::MissingPrefix),
            Some(e) => match LENIENT.decode(e) {
                Err(_) => Err(SecretError::InvalidBase64),
                Ok(k) if !(24..=64).contains(&k.len()) => Err(SecretError::WrongLength(k.len())),
                Ok(k) => Ok(k),
            },
        };
        let got = SigningSecret::parse(&s);
        match (&got, &expected) {
            (Ok(secret), Ok(key)) => {
                prop_assert_eq!(secret.key(), key.as_slice());
                prop_assert!(SigningSecret::parse(&secret.expose()).ok() == Some(secret.clone()));
                let shown = format!("{secret:?}");
                prop_assert!(!shown.contains(&STANDARD.encode(key)[..8]), "{shown}");
            }
            (Err(e), Err(want)) => prop_assert_eq!(e, want),
            _ => prop_assert!(false, "{:?}: got {:?}, expected {:?}", s, got.as_ref().map(|_| ()), expected),
        }
        if let (Err(e), Some(body)) = (&got, encoded)
            && body.len() >= 12
        {
            let msg = e.to_string();
            prop_assert!(!msg.contains(body), "{msg}");
            let json = Value::String(s.clone()).to_string();
            let serde_msg = serde_json::from_str::<SigningSecret>(&json).err().map(|e| e.to_string()).unwrap_or_default();
            prop_assert!(!serde_msg.contains(body), "{serde_msg}");
        }
    }
}

/// A header value: the right signature among junk, junk alone, or anything.
fn signature_header(good: String) -> impl Strategy<Value = String> {
    let junk = prop_oneof![
        "v1,[A-Za-z0-9+/=]{0,50}",
        "v[0-9],[A-Za-z0-9+/=]{0,50}",
        "(sha256|sha512)=[0-9a-f]{0,130}",
        "\\PC{0,20}",
    ];
    let trimmed = good.trim_end_matches('=').to_string();
    let tweak = good.clone();
    prop_oneof![
        prop::collection::vec(junk.clone(), 0..4).prop_map(|j| j.join(" ")),
        (
            prop::collection::vec(junk.clone(), 0..3),
            any::<prop::sample::Index>(),
            prop_oneof![Just(" "), Just("\t"), Just("  \n")]
        )
            .prop_map(move |(mut j, at, sep)| {
                j.insert(at.index(j.len() + 1), good.clone());
                j.join(sep)
            }),
        Just(trimmed),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(move |(at, b)| {
            // One byte of the signature changed.
            let mut bytes = tweak.clone().into_bytes();
            let i = 3 + at.index(bytes.len() - 3);
            bytes[i] = if bytes[i] == b'A' {
                b'B'
            } else {
                b'A' ^ (b & 1)
            };
            String::from_utf8(bytes).unwrap()
        }),
        any::<String>(),
    ]
}

fn timestamp_header(now: i64) -> impl Strategy<Value = String> {
    prop_oneof![
        (-400i64..400).prop_map(move |d| now.saturating_add(d).to_string()),
        (-400i64..400).prop_map(move |d| format!(" {} ", now.saturating_add(d))),
        any::<i64>().prop_map(|t| t.to_string()),
        Just(String::new()),
        Just("  ".to_string()),
        "[+-]?[0-9]{0,25}",
        "\\PC{0,12}",
    ]
}

/// What `verify_with_tolerance` must answer, written out again from the Standard Webhooks
/// rules.
fn verify_model(
    secret: &SigningSecret,
    id: &str,
    ts: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), VerifyError> {
    if id.is_empty() || ts.trim().is_empty() || header.trim().is_empty() {
        return Err(VerifyError::MissingHeader);
    }
    let t: i64 = ts
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let age = i128::from(now) - i128::from(t);
    let tol = i128::from(tolerance.max(0));
    if age > tol {
        return Err(VerifyError::TimestampTooOld);
    }
    if age < -tol {
        return Err(VerifyError::TimestampTooNew);
    }
    let expected = LENIENT
        .decode(&sign(secret, id, t, body)[3..])
        .expect("sign writes base64");
    let found = header
        .split_whitespace()
        .filter_map(|e| e.strip_prefix("v1,"))
        .filter_map(|s| LENIENT.decode(s).ok())
        .any(|s| s == expected);
    if found {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

fn verify_case() -> impl Strategy<Value = (SigningSecret, SigningSecret, String, Vec<u8>, i64, i64)>
{
    (
        key_secret(),
        key_secret(),
        prop_oneof!["evt_[0-9A-Za-z]{1,30}", Just(String::new()), "\\PC{0,30}"],
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            "\\PC{0,100}".prop_map(String::into_bytes),
        ],
        prop_oneof![
            1_700_000_000i64..1_900_000_000,
            Just(i64::MIN),
            Just(i64::MAX),
            any::<i64>()
        ],
        prop_oneof![Just(300i64), 0i64..1000, any::<i64>()],
    )
}

/// One verification: the secret checked with, the headers (signed with it or with another
/// secret, over the timestamp header's value when it is a number), the body and the clock.
type StandardCase = (SigningSecret, String, String, String, Vec<u8>, i64, i64);

fn standard_case() -> impl Strategy<Value = StandardCase> {
    verify_case()
        .prop_flat_map(|(secret, other, id, body, now, tolerance)| {
            (
                Just((secret, other, id, body, now, tolerance)),
                timestamp_header(now),
                any::<bool>(),
            )
        })
        .prop_flat_map(
            |((secret, other, id, body, now, tolerance), ts, wrong_key)| {
                let t = ts.trim().parse::<i64>().unwrap_or(now);
                let good = sign(if wrong_key { &other } else { &secret }, &id, t, &body);
                (
                    Just((secret, id, ts, body, now, tolerance)),
                    signature_header(good),
                )
            },
        )
        .prop_map(|((secret, id, ts, body, now, tolerance), header)| {
            (secret, id, ts, header, body, now, tolerance)
        })
}

proptest! {
    #![proptest_config(config(512))]

    /// Standard Webhooks verification with arbitrary id, timestamp and signature headers,
    /// bodies, clocks and tolerances: exactly the model's answer, and a delivery verifies
    /// only with a signature made with the secret.
    #[test]
    fn fuzz_verify_standard((secret, id, ts, header, body, now, tolerance) in standard_case()) {
        let got = verify_with_tolerance(&secret, &id, &ts, &header, &body, now, tolerance);
        prop_assert_eq!(got, verify_model(&secret, &id, &ts, &header, &body, now, tolerance));
        if let Err(e) = got {
            let msg = e.to_string();
            prop_assert!(!msg.is_empty());
            prop_assert!(!msg.contains(&secret.expose()[6..]));
        }
        if tolerance == 300 {
            prop_assert_eq!(got, verify(&secret, &id, &ts, &header, &body, now));
        }
    }

    /// The legacy hex schemes: only the right label and the right HMAC verify.
    #[test]
    fn fuzz_verify_legacy(
        (secret, other, _id, body, now, tolerance) in verify_case(),
        sha512 in any::<bool>(),
        wrong_key in any::<bool>(),
        delta in -400i64..400,
        junk in prop::collection::vec(prop_oneof![
            "(sha256|sha512|v1)=[0-9a-fA-F]{0,130}",
            "\\PC{0,20}",
        ], 0..3),
        ts_junk in prop::option::of("\\PC{0,12}"),
    ) {
        let scheme = if sha512 { LegacyScheme::Sha512 } else { LegacyScheme::Sha256 };
        let t = now.saturating_add(delta);
        let ts = ts_junk.unwrap_or_else(|| t.to_string());
        let signer = if wrong_key { &other } else { &secret };
        let good = legacy_signature(scheme, signer, ts.trim().parse().unwrap_or(t), &body);
        let mut entries = junk.clone();
        entries.push(good);
        let header = entries.join(" ");
        let got = verify_legacy_with_tolerance(scheme, &secret, &ts, &header, &body, now, tolerance);
        if got.is_ok() {
            let expected = legacy_signature(scheme, &secret, ts.trim().parse().unwrap(), &body);
            prop_assert!(header.split_whitespace().any(|e| e.eq_ignore_ascii_case(&expected)));
        }
        let parsed_ts = ts.trim().parse::<i64>();
        if !wrong_key
            && let Ok(pt) = parsed_ts
            && (i128::from(now) - i128::from(pt)).abs() <= i128::from(tolerance.max(0))
        {
            prop_assert_eq!(got, Ok(()));
        }
        if ts.trim().is_empty() {
            prop_assert_eq!(got, Err(VerifyError::MissingHeader));
        } else if parsed_ts.is_err() {
            prop_assert_eq!(got, Err(VerifyError::InvalidTimestamp));
        }
    }

    /// Signature scheme names, roles, states, outcomes and disabled reasons: only their
    /// names parse, and each parses back from its name.
    #[test]
    fn fuzz_enum_names(s in prop_oneof![
        "\\PC{0,20}",
        "(standard|hex-sha256|hex-sha512|reader|publisher|admin|pending|delivered|retrying|failed|subscriber_deleted|success|failure|manual|gone|failing)[ A-Z]?",
    ]) {
        match SignatureScheme::parse(&s) {
            Ok(scheme) => prop_assert_eq!(scheme.as_str(), s.as_str()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        if let Some(r) = Role::parse(&s) { prop_assert_eq!(r.as_str(), s.as_str()); }
        if let Some(st) = DeliveryState::parse(&s) { prop_assert_eq!(st.as_str(), s.as_str()); }
        if let Some(o) = Outcome::parse(&s) { prop_assert_eq!(o.as_str(), s.as_str()); }
        if let Some(d) = DisabledReason::parse(&s) { prop_assert_eq!(d.as_str(), s.as_str()); }
    }
}

// ---------------------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------------------

fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "(evt_|sub_|key_)[0-9A-Za-z]{0,66}",
        "(evt_|sub_|key_|EVT_|)\\PC{0,70}",
        "[a-z0-9][a-z0-9_-]{0,64}",
        "[A-Za-z0-9_.-]{0,65}",
        any::<String>(),
    ]
}

fn prefixed_model(s: &str, prefix: &'static str) -> Result<(), IdError> {
    match s.strip_prefix(prefix) {
        Some(rest)
            if (1..=64).contains(&rest.len())
                && rest.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok(())
        }
        _ => Err(IdError::Prefixed { prefix }),
    }
}

fn tenant_model(s: &str) -> Result<(), IdError> {
    let mut chars = s.bytes();
    let ok = match chars.next() {
        Some(f) => {
            (f.is_ascii_lowercase() || f.is_ascii_digit())
                && s.len() <= 63
                && chars
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        }
        None => false,
    };
    if ok { Ok(()) } else { Err(IdError::Tenant) }
}

proptest! {
    #![proptest_config(config(1024))]

    /// Ids and tenants: exactly the grammar, the typed error otherwise, and round trips
    /// through text, `FromStr` and JSON.
    #[test]
    fn fuzz_ids(s in id_text()) {
        macro_rules! check {
            ($t:ty, $prefix:expr) => {{
                let got = <$t>::parse(&s);
                prop_assert_eq!(got.clone().map(|_| ()), prefixed_model(&s, $prefix));
                match got {
                    Ok(id) => {
                        prop_assert_eq!(id.as_str(), s.as_str());
                        prop_assert_eq!(s.parse::<$t>(), Ok(id.clone()));
                        let json = serde_json::to_string(&id).unwrap();
                        prop_assert_eq!(serde_json::from_str::<$t>(&json).ok(), Some(id.clone()));
                    }
                    Err(e) => prop_assert!(e.to_string().contains($prefix)),
                }
            }};
        }
        check!(EventId, "evt_");
        check!(SubscriberId, "sub_");
        check!(ApiKeyId, "key_");
        let tenant = TenantId::parse(&s);
        prop_assert_eq!(tenant.clone().map(|_| ()), tenant_model(&s));
        if let Ok(t) = tenant {
            prop_assert_eq!(t.as_str(), s.as_str());
            let json = serde_json::to_string(&t).unwrap();
            prop_assert_eq!(serde_json::from_str::<TenantId>(&json).ok(), Some(t));
        }
    }
}

/// One construct of jq that nests: what opens it, what closes it.
const NESTING: &[(&str, &str)] = &[
    ("(", ")"),
    ("[", "]"),
    ("{a: ", "}"),
    ("- ", ""),
    ("try ", ""),
    ("try ", " catch ."),
    ("if . then ", " end"),
    ("if . then . else ", " end"),
    (". as $x | ", ""),
    (". as [$x] | ", ""),
    ("def f: ", "; f"),
    ("def f(g): ", "; f(.)"),
    ("reduce . as $x (.; ", ")"),
    ("foreach . as $x (.; ", ")"),
    ("foreach . as $x (.; .; ", ")"),
    ("label $out | ", ""),
    ("\"\\(", ")\""),
    ("@base64 \"\\(", ")\""),
    (". | ", ""),
    (". , ", ""),
    ("1 + ", ""),
    (". // ", ""),
    (". and ", ""),
    (".a |= ", ""),
    (".[", "]"),
    ("f(", ")"),
];

proptest! {
    #![proptest_config(config(64))]

    /// Deep nestings of every construct, mixed, up to the 16 KiB a program may have, behind
    /// comments, strings and line ends: compiling answers (a program or an error, and
    /// "too deep" past the limit), never overflows a stack, which would abort this process.
    #[test]
    fn fuzz_deep_nesting_of_every_construct_compiles_or_is_refused(
        prefix in prop::collection::vec(
            prop::sample::select(vec!["#", "\\", "\r", "\n", "\"", " ", "a", "(", ")"]),
            0..8,
        ),
        picks in prop::collection::vec(0..NESTING.len(), 1..4000),
    ) {
        let mut open = prefix.concat();
        let mut close = String::new();
        // Constructs used that always count at least one level (a comma right inside an
        // object separates entries, so commas are left out of this count).
        let mut levels = 0;
        for &i in &picks {
            let (o, c) = NESTING[i];
            if open.len() + o.len() + close.len() + c.len() + 1 > MAX_PROGRAM_BYTES {
                break;
            }
            open.push_str(o);
            close.insert_str(0, c);
            if o != ". , " {
                levels += 1;
            }
        }
        let program = format!("{open}.{close}");
        match Program::compile(&program) {
            Ok(_) | Err(JqError::TooDeep) | Err(JqError::Compile(_)) | Err(JqError::TooLong) => {}
            Err(other) => prop_assert!(false, "{other}"),
        }
        // Without the prefix, more than the limit of nesting units is always refused.
        let plain = format!("{}.{}", &open[prefix.concat().len()..], close);
        if levels > MAX_NESTING {
            prop_assert_eq!(Program::compile(&plain).err(), Some(JqError::TooDeep));
        }
    }
}
