//! Event types (`order.created`) and the filters subscribers use to pick them (`order.*`, `*`).

use crate::ids::string_newtype_impls;

/// Longest event type or filter accepted; long enough for any real name, short enough to
/// keep keys and log lines small.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// Most filters a subscriber may have: replacing all of them, with the subscriber record,
/// must fit one DynamoDB transaction (100 items), so that routes never drift from records.
pub const MAX_FILTERS: usize = 48;

/// Why a string is not a valid event type or filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventTypeError {
    #[error("event type must not be empty")]
    Empty,
    #[error("event type is longer than {MAX_EVENT_TYPE_LEN} characters")]
    TooLong,
    #[error(
        "event type has an empty segment: use single dots between names, none at the start or end"
    )]
    EmptySegment,
    #[error("event type contains {0:?}; only letters, digits, '_', '-' and '.' are allowed")]
    InvalidChar(char),
    #[error("'*' may only stand alone or as the whole last segment, as in \"order.*\"")]
    MisplacedWildcard,
}

/// A dot-separated event name such as `order.created` or `invoice.payment_failed`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventType(String);

impl EventType {
    /// Accepts 1 to 128 characters: non-empty segments of `[A-Za-z0-9_-]` joined by dots.
    pub fn parse(s: &str) -> Result<Self, EventTypeError> {
        check_length(s)?;
        for segment in s.split('.') {
            check_segment(segment)?;
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_newtype_impls!(EventType, EventTypeError);

fn check_length(s: &str) -> Result<(), EventTypeError> {
    if s.is_empty() {
        Err(EventTypeError::Empty)
    } else if s.len() > MAX_EVENT_TYPE_LEN {
        Err(EventTypeError::TooLong)
    } else {
        Ok(())
    }
}

fn check_segment(segment: &str) -> Result<(), EventTypeError> {
    if segment.is_empty() {
        return Err(EventTypeError::EmptySegment);
    }
    match segment
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        None => Ok(()),
        // A misplaced `*` deserves its own hint: the caller was clearly writing a filter.
        Some('*') => Err(EventTypeError::MisplacedWildcard),
        Some(c) => Err(EventTypeError::InvalidChar(c)),
    }
}

/// One entry of a subscriber's `event_types`: everything, one exact type, or every type
/// below a prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventTypeFilter {
    raw: String,
    kind: FilterKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FilterKind {
    All,
    Exact,
    /// `raw` minus its trailing `*`, that is, the prefix including its final dot.
    Prefix,
}

impl EventTypeFilter {
    /// Accepts `*`, an event type, or an event type followed by `.*`.
    pub fn parse(s: &str) -> Result<Self, EventTypeError> {
        check_length(s)?;
        let kind = if s == "*" {
            FilterKind::All
        } else if let Some(prefix) = s.strip_suffix(".*") {
            EventType::parse(prefix)?;
            FilterKind::Prefix
        } else {
            EventType::parse(s)?;
            FilterKind::Exact
        };
        Ok(Self {
            raw: s.to_owned(),
            kind,
        })
    }

    /// Segment-wise: `order.*` matches `order.created` and `order.item.added`, but neither
    /// `order` itself nor `orders.created`.
    pub fn matches(&self, event_type: &EventType) -> bool {
        let name = event_type.as_str();
        match self.kind {
            FilterKind::All => true,
            FilterKind::Exact => name == self.raw,
            // Keeping the dot in the prefix is what stops `order.*` matching `orders.x`; an
            // event type never ends with a dot, so anything after it is a whole segment.
            FilterKind::Prefix => name.starts_with(&self.raw[..self.raw.len() - 1]),
        }
    }

    /// True for `*`, the filter that matches every event type.
    pub fn is_all(&self) -> bool {
        self.kind == FilterKind::All
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

string_newtype_impls!(EventTypeFilter, EventTypeError);

impl From<EventType> for EventTypeFilter {
    fn from(event_type: EventType) -> Self {
        Self {
            raw: event_type.0,
            kind: FilterKind::Exact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn et(s: &str) -> EventType {
        EventType::parse(s).unwrap()
    }

    fn filter(s: &str) -> EventTypeFilter {
        EventTypeFilter::parse(s).unwrap()
    }

    #[test]
    fn event_type_grammar() {
        for good in [
            "order",
            "order.created",
            "a.b.c",
            "Invoice.payment_failed",
            "x-1.y_2",
            &"a".repeat(128),
        ] {
            assert_eq!(et(good).as_str(), good);
        }
        assert_eq!(EventType::parse(""), Err(EventTypeError::Empty));
        assert_eq!(
            EventType::parse(&"a".repeat(129)),
            Err(EventTypeError::TooLong)
        );
        for bad in [".order", "order.", "order..created", "."] {
            assert_eq!(
                EventType::parse(bad),
                Err(EventTypeError::EmptySegment),
                "{bad:?}"
            );
        }
        assert_eq!(
            EventType::parse("order created"),
            Err(EventTypeError::InvalidChar(' '))
        );
        assert_eq!(
            EventType::parse("order/created"),
            Err(EventTypeError::InvalidChar('/'))
        );
        assert_eq!(
            EventType::parse("ordér"),
            Err(EventTypeError::InvalidChar('é'))
        );
        assert_eq!(
            EventType::parse("order.*"),
            Err(EventTypeError::MisplacedWildcard)
        );
    }

    #[test]
    fn filter_grammar() {
        assert!(filter("*").is_all());
        assert!(!filter("order.*").is_all());
        assert_eq!(filter("order.*").as_str(), "order.*");
        assert_eq!(filter("a.b.*").to_string(), "a.b.*");
        for bad in [
            "",
            "**",
            "*.order",
            "order*",
            "order.*.created",
            "order.**",
            "order.c*",
            ".*",
            "order..*",
        ] {
            assert!(
                EventTypeFilter::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert_eq!(
            EventTypeFilter::parse("*.order"),
            Err(EventTypeError::MisplacedWildcard)
        );
        assert_eq!(
            EventTypeFilter::parse(&format!("{}.*", "a".repeat(127))),
            Err(EventTypeError::TooLong)
        );
    }

    #[test]
    fn wildcard_matches_by_whole_segments() {
        let f = filter("order.*");
        assert!(f.matches(&et("order.created")));
        assert!(f.matches(&et("order.item.added")));
        assert!(!f.matches(&et("order")));
        assert!(!f.matches(&et("orders.created")));
        assert!(!f.matches(&et("Order.created")));
        assert!(!f.matches(&et("invoice.order.created")));
    }

    #[test]
    fn exact_and_all_filters() {
        assert!(filter("order.created").matches(&et("order.created")));
        assert!(!filter("order.created").matches(&et("order.created.v2")));
        assert!(!filter("order.created").matches(&et("order")));
        assert!(filter("*").matches(&et("anything.at.all")));
        let from: EventTypeFilter = et("order.created").into();
        assert_eq!(from, filter("order.created"));
    }

    #[test]
    fn serde_validates() {
        let f: EventTypeFilter = serde_json::from_str("\"order.*\"").unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), "\"order.*\"");
        assert!(serde_json::from_str::<EventTypeFilter>("\"order*\"").is_err());
        let t: EventType = serde_json::from_str("\"order.created\"").unwrap();
        assert_eq!(t, et("order.created"));
        let err = serde_json::from_str::<EventType>("\"order..created\"").unwrap_err();
        assert!(err.to_string().contains("empty segment"), "{err}");
    }

    proptest! {
        #[test]
        fn prefix_filter_matches_exactly_the_types_below_it(
            prefix in "[a-z]{1,5}(\\.[a-z]{1,5}){0,2}",
            name in "[a-z]{1,5}(\\.[a-z]{1,5}){0,3}",
        ) {
            let f = filter(&format!("{prefix}.*"));
            let t = et(&name);
            let below = name.starts_with(&format!("{prefix}."));
            prop_assert_eq!(f.matches(&t), below);
            // Every type below the prefix is matched, however deep.
            let child = format!("{prefix}.{name}");
            if child.len() <= MAX_EVENT_TYPE_LEN {
                prop_assert!(f.matches(&et(&child)));
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,140}") {
            let _ = EventType::parse(&s);
            if let Ok(f) = EventTypeFilter::parse(&s) {
                prop_assert_eq!(EventTypeFilter::parse(f.as_str()).unwrap(), f);
            }
        }

        #[test]
        fn every_event_type_is_its_own_exact_filter(name in "[A-Za-z0-9_-]{1,10}(\\.[A-Za-z0-9_-]{1,10}){0,5}") {
            let t = et(&name);
            prop_assert!(filter(&name).matches(&t));
            prop_assert!(filter("*").matches(&t));
        }
    }
}
