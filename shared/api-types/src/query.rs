//! Query strings: typed parameters and one struct per route that takes any. A parameter that
//! does not parse is a `400` whose code names it (see [`error_code`]) and whose message says
//! what was expected.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use skyhook_domain::ids::{EventId, SubscriberId};
use skyhook_domain::model::{Outcome, format_time, parse_time};
use skyhook_domain::series::Bucket;

/// The `400` code of a query parameter that does not parse, by the parameter's name.
pub fn error_code(param: &str) -> &'static str {
    match param {
        "limit" => "invalid_limit",
        "since" | "until" => "invalid_time",
        "outcome" => "invalid_outcome",
        "active" => "invalid_active",
        "subscriber_id" => "invalid_subscriber_id",
        "event_id" => "invalid_event_id",
        "bucket" => "invalid_bucket",
        _ => "invalid_query",
    }
}

/// How many items a list answers with: 1 to [`Limit::MAX`], [`Limit::DEFAULT`] when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Limit(u16);

impl Limit {
    pub const DEFAULT: Limit = Limit(50);
    pub const MAX: Limit = Limit(250);

    /// `n` when it is from 1 to [`Limit::MAX`].
    pub fn new(n: u64) -> Option<Self> {
        u16::try_from(n)
            .ok()
            .filter(|n| (1..=Self::MAX.0).contains(n))
            .map(Limit)
    }

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl Visitor<'_> for LimitVisitor {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a number from 1 to {}", Limit::MAX)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Limit, E> {
                Limit::new(n).ok_or_else(|| E::custom(format!("must be {}", ExpectLimit)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Limit, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("must be {}", ExpectLimit)))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Limit, E> {
                s.parse::<u64>()
                    .map_err(|_| E::custom(format!("must be {}", ExpectLimit)))
                    .and_then(|n| self.visit_u64(n))
            }
        }
        d.deserialize_any(LimitVisitor)
    }
}

struct ExpectLimit;

impl fmt::Display for ExpectLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a number from 1 to {}", Limit::MAX)
    }
}

impl PartialSchema for Limit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(Limit::MAX.0))
            .default(Some(Limit::DEFAULT.0.into()))
            .description(Some("How many items to answer with."))
            .into()
    }
}

impl ToSchema for Limit {}

/// An opaque position in a list: a page's `next_cursor`, passed back as it is. It is bound to
/// the tenant and the filters that made it; any other is `400 invalid_cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl PartialSchema for Cursor {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A page's next_cursor, passed back unchanged for the next page.",
            ))
            .into()
    }
}

impl ToSchema for Cursor {}

impl From<Cursor> for String {
    fn from(c: Cursor) -> String {
        c.0
    }
}

/// An RFC 3339 time such as `2026-01-02T03:04:05Z`, in years 1 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn parse(s: &str) -> Option<Self> {
        parse_time(s).map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_time(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time such as 2026-01-02T03:04:05Z")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse(s).ok_or_else(|| {
                    E::custom("must be an RFC 3339 time such as 2026-01-02T03:04:05Z")
                })
            }
        }
        d.deserialize_str(TimeVisitor)
    }
}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples(["2026-01-02T03:04:05Z"])
            .into()
    }
}

impl ToSchema for Timestamp {}

/// `GET /v1/subscribers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscribersQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// Only active (`true`) or only inactive (`false`) subscribers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// `GET /v1/deliveries`: every filter is optional; `since` and `until` bound the attempt's
/// start, both inclusive.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only this subscriber's attempts (`sub_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, pattern = "^sub_[0-9A-Za-z]{1,64}$")]
    pub subscriber_id: Option<SubscriberId>,
    /// Only this event's attempts (`evt_…`), by subscriber and attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, pattern = "^evt_[0-9A-Za-z]{1,64}$")]
    pub event_id: Option<EventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
}

/// `GET /v1/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// One subscriber's totals (`sub_…`) rather than the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, pattern = "^sub_[0-9A-Za-z]{1,64}$")]
    pub subscriber_id: Option<SubscriberId>,
}

/// `GET /v1/stats/timeseries`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// One subscriber's attempts (`sub_…`) rather than the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, pattern = "^sub_[0-9A-Za-z]{1,64}$")]
    pub subscriber_id: Option<SubscriberId>,
    /// The width of a point: `minute`, `hour` (the default) or `day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<Bucket>)]
    pub bucket: Option<Bucket>,
    /// The first point is the bucket holding this time (RFC 3339); by default 59 buckets
    /// before `until`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// The last point is the bucket holding this time (RFC 3339); by default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// `GET /v1/dlq`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DlqQuery {
    /// Only this subscriber's dead deliveries (`sub_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<String>, pattern = "^sub_[0-9A-Za-z]{1,64}$")]
    pub subscriber_id: Option<SubscriberId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
}

/// A page of a list with no filters: `GET /v1/api-keys`, `GET /v1/audit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
}

/// The limit a query asked for, or the default.
pub fn limit_or_default(limit: Option<Limit>) -> usize {
    limit.unwrap_or_default().get()
}

/// The page a listing's `limit` and `cursor` ask for.
pub fn page_request(
    limit: Option<Limit>,
    cursor: Option<Cursor>,
) -> skyhook_domain::ports::PageRequest {
    skyhook_domain::ports::PageRequest {
        limit: limit_or_default(limit),
        cursor: cursor.map(String::from),
        active: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_take_1_to_250_as_text_or_number() {
        let q: PageQuery = serde_urlencoded::from_str("limit=250&cursor=abc").unwrap();
        assert_eq!(q.limit, Limit::new(250));
        assert_eq!(q.cursor, Some(Cursor("abc".into())));
        assert_eq!(limit_or_default(None), 50);
        for bad in ["0", "251", "x", "-1", "1.5", ""] {
            let err = serde_urlencoded::from_str::<PageQuery>(&format!("limit={bad}")).unwrap_err();
            assert!(err.to_string().contains("from 1 to 250"), "{bad}: {err}");
        }
        assert_eq!(serde_json::from_str::<Limit>("7").unwrap().get(), 7);
        assert!(serde_json::from_str::<Limit>("-7").is_err());
    }

    #[test]
    fn delivery_filters_are_typed() {
        let q: DeliveriesQuery = serde_urlencoded::from_str(
            "outcome=failure&since=2026-01-02T03%3A04%3A05Z&subscriber_id=sub_01ABC",
        )
        .unwrap();
        assert_eq!(q.outcome, Some(Outcome::Failure));
        assert_eq!(q.since.unwrap().to_string(), "2026-01-02T03:04:05.000Z");
        assert_eq!(q.subscriber_id.unwrap().as_str(), "sub_01ABC");
        for bad in [
            "outcome=maybe",
            "since=yesterday",
            "until=+10000-01-01T00:00:00Z",
            "event_id=sub_1",
        ] {
            assert!(
                serde_urlencoded::from_str::<DeliveriesQuery>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_parameter_has_a_code() {
        assert_eq!(error_code("limit"), "invalid_limit");
        assert_eq!(error_code("until"), "invalid_time");
        assert_eq!(error_code("anything"), "invalid_query");
    }
}
