//! Identifier newtypes: prefixed, time-sortable ids (`evt_…`, `sub_…`, `key_…`) and tenant names.
//!
//! Every id is parsed once at the edge, so a value of one of these types is always well formed
//! and an event id can never be passed where a subscriber id is expected.

use std::time::{SystemTime, UNIX_EPOCH};

/// Why a string is not a valid id. The message names the expected form, because it is
/// shown to API callers who typed the id by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "expected an id of the form {prefix}… ({prefix} followed by 1 to 64 ASCII letters or digits)"
    )]
    Prefixed { prefix: &'static str },
    #[error(
        "expected a tenant id: 1 to 63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
    )]
    Tenant,
}

/// Implements the string-facing traits shared by every parsed string newtype: `Display`,
/// `FromStr`, `AsRef<str>`, and serde that writes the string and re-validates it on the way in
/// (stored data and request bodies are outside input too).
///
/// The type needs `fn parse(&str) -> Result<Self, $err>` and `fn as_str(&self) -> &str`.
macro_rules! string_newtype_impls {
    ($name:ident, $err:ty) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let raw = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&raw).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}
pub(crate) use string_newtype_impls;

/// Declares a prefixed id newtype. One macro keeps the three id kinds from drifting apart.
macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id: the prefix and a ULID, so ids sort by creation time (to the ms).
            // A `Default` that invents a random id would surprise readers of `..Default::default()`.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(format!("{}{}", $prefix, new_ulid()))
            }

            /// An id as [`Self::new`] would have minted it at `unix_ms` (imports and tests of
            /// time-ordered listings).
            pub fn minted_at(unix_ms: u128) -> Self {
                Self(format!("{}{}", $prefix, encode_ulid(unix_ms, rand::random::<u128>())))
            }

            /// Accepts the prefix and 1 to 64 ASCII letters or digits. Ids made elsewhere (an
            /// `Idempotency-Key`-style caller-chosen event id, say) need not be ULIDs.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                match s.strip_prefix($prefix) {
                    Some(rest) if is_id_body(rest) => Ok(Self(s.to_owned())),
                    _ => Err(IdError::Prefixed { prefix: $prefix }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        string_newtype_impls!($name, IdError);
    };
}

prefixed_id!(
    /// Identifies one published event; it is the `webhook-id` of every delivery of that event.
    EventId,
    "evt_"
);
prefixed_id!(
    /// Identifies one subscriber (an endpoint with its filters and secret).
    SubscriberId,
    "sub_"
);
prefixed_id!(
    /// Identifies an inbound source: where webhooks from outside arrive and are verified.
    SourceId,
    "src_"
);
prefixed_id!(
    /// Identifies an API key; the key's secret part is a separate value stored only as a hash.
    ApiKeyId,
    "key_"
);

fn is_id_body(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Names the tenant that owns subscribers, events and keys. Lowercase only, so that
/// `Acme` and `acme` cannot become two tenants.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    const DEFAULT: &'static str = "default";

    /// The tenant the bootstrap admin key belongs to.
    pub fn default_tenant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// Accepts `[a-z0-9][a-z0-9_-]{0,62}`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        let valid = match bytes.split_first() {
            Some((first, rest)) => {
                rest.len() <= 62
                    && (first.is_ascii_lowercase() || first.is_ascii_digit())
                    && rest.iter().all(|&b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    })
            }
            None => false,
        };
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Tenant)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

string_newtype_impls!(TenantId, IdError);

fn new_ulid() -> String {
    // A clock before 1970 is a broken host, not a reason to fail; such ids just sort first.
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    encode_ulid(ms, rand::random::<u128>())
}

/// The first ten characters of every ULID minted at `unix_ms`: its time part.
pub fn ulid_time_prefix(unix_ms: u128) -> String {
    encode_ulid(unix_ms, 0)[..10].to_string()
}

/// 48 bits of unix milliseconds, then 80 random bits, in Crockford's base 32, most
/// significant first, so that string order is time order.
fn encode_ulid(unix_ms: u128, random: u128) -> String {
    let ms = u64::try_from(unix_ms & ((1 << 48) - 1)).unwrap_or(0);
    ulid::Ulid::from_parts(ms, random).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Crockford's base32: no I, L, O or U, so ids survive being read aloud or retyped.
    const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    const ULID_LEN: usize = 26;

    #[test]
    fn new_ids_have_prefix_and_ulid_body() {
        let id = SubscriberId::new();
        let body = id.as_str().strip_prefix("sub_").unwrap();
        assert_eq!(body.len(), ULID_LEN);
        assert!(body.bytes().all(|b| CROCKFORD.contains(&b)));
        assert_eq!(SubscriberId::parse(id.as_str()).unwrap(), id);
        assert!(EventId::new().as_str().starts_with("evt_"));
        assert!(ApiKeyId::new().as_str().starts_with("key_"));
    }

    #[test]
    fn new_ids_are_distinct() {
        let a = EventId::new();
        let b = EventId::new();
        assert_ne!(a, b);
    }

    #[test]
    fn ulid_encoding_is_known() {
        // Values worked out by hand: the top digit carries only the 3 highest bits.
        assert_eq!(encode_ulid(0, 0), "00000000000000000000000000");
        assert_eq!(encode_ulid(0, 1), "00000000000000000000000001");
        assert_eq!(
            encode_ulid((1 << 48) - 1, (1 << 80) - 1),
            "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
        );
        // Only the low 48 bits of the time are kept, like the ULID spec.
        assert_eq!(encode_ulid(1 << 48, 0), encode_ulid(0, 0));
    }

    #[test]
    fn parse_rejects_wrong_prefix_and_bad_bodies() {
        assert!(SubscriberId::parse("sub_abc123XYZ").is_ok());
        assert!(SubscriberId::parse(&format!("sub_{}", "a".repeat(64))).is_ok());
        for bad in [
            "",
            "sub_",
            "evt_abc",
            "SUB_abc",
            "sub_abc-def",
            "sub_abc def",
            "sub_é",
            " sub_abc",
            &format!("sub_{}", "a".repeat(65)),
        ] {
            assert!(
                SubscriberId::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn error_message_names_the_expected_form() {
        let err = SubscriberId::parse("nope").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("expected an id of the form sub_…"),
            "{err}"
        );
        assert!(
            TenantId::parse("Nope")
                .unwrap_err()
                .to_string()
                .contains("tenant id")
        );
    }

    #[test]
    fn serde_writes_a_string_and_validates_on_read() {
        let id = EventId::parse("evt_01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"evt_01ARZ3NDEKTSV4RRFFQ69G5FAV\"");
        assert_eq!(serde_json::from_str::<EventId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<EventId>("\"sub_01ARZ3NDEKTSV4RRFFQ69G5FAV\"").is_err());
        assert!(serde_json::from_str::<EventId>("42").is_err());
    }

    #[test]
    fn display_and_from_str_agree() {
        let id: ApiKeyId = "key_abc".parse().unwrap();
        assert_eq!(id.to_string(), "key_abc");
        assert_eq!(id.as_ref(), "key_abc");
    }

    #[test]
    fn tenant_ids() {
        assert_eq!(TenantId::default_tenant().as_str(), "default");
        assert!(TenantId::default_tenant().is_default());
        assert_eq!(
            TenantId::parse("default").unwrap(),
            TenantId::default_tenant()
        );
        for good in [
            "a",
            "0",
            "acme",
            "acme-corp_2",
            &format!("a{}", "-".repeat(62)),
        ] {
            assert!(TenantId::parse(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in [
            "",
            "-acme",
            "_acme",
            "Acme",
            "acme corp",
            "acme.corp",
            &"a".repeat(64),
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let t: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"acme\"");
        assert!(serde_json::from_str::<TenantId>("\"ACME\"").is_err());
    }

    proptest! {
        #[test]
        fn ulids_sort_by_time(t1 in 0u128..(1 << 48), t2 in 0u128..(1 << 48), r1: u128, r2: u128) {
            prop_assume!(t1 != t2);
            let (a, b) = (encode_ulid(t1, r1), encode_ulid(t2, r2));
            prop_assert_eq!(t1 < t2, a < b);
        }

        #[test]
        fn valid_bodies_round_trip(body in "[0-9A-Za-z]{1,64}") {
            let s = format!("evt_{body}");
            let id = EventId::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
            let back: EventId = serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
            prop_assert_eq!(back, id);
        }

        #[test]
        fn parse_never_panics_and_accepts_only_the_grammar(s in "\\PC{0,80}") {
            let accepted = SubscriberId::parse(&s).is_ok();
            let expected = s
                .strip_prefix("sub_")
                .is_some_and(|rest| (1..=64).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_alphanumeric()));
            prop_assert_eq!(accepted, expected);
            let _ = TenantId::parse(&s);
        }

        #[test]
        fn tenant_grammar(s in "[a-z0-9][a-z0-9_-]{0,62}") {
            let tenant = TenantId::parse(&s).unwrap();
            prop_assert_eq!(tenant.as_str(), s.as_str());
        }
    }
}
