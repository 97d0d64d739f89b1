//! Pagination cursors: opaque to callers, bound to the tenant and the filters of the list
//! they came from. A cursor holds only a position (sort keys, ids); the partition a page
//! reads always comes from the caller's own tenant, so no cursor reaches another tenant's
//! data, and one from another list or filter is refused rather than misread.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use skyhook_domain::ids::TenantId;
use skyhook_domain::ports::StoreError;

/// What a cursor is bound to: a digest of the tenant, the list and its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding(String);

impl Binding {
    pub fn new(tenant: &TenantId, list: &str, filters: &[Option<String>]) -> Self {
        let mut h = Sha256::new();
        h.update(tenant.as_str());
        h.update([0]);
        h.update(list);
        for f in filters {
            h.update([0]);
            match f {
                Some(v) => {
                    h.update([1]);
                    h.update(v);
                }
                None => h.update([2]),
            }
        }
        Self(hex::encode(&h.finalize()[..8]))
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    b: String,
    p: T,
}

pub(crate) fn encode<T: Serialize>(binding: &Binding, position: &T) -> String {
    let json = serde_json::to_vec(&Envelope {
        b: binding.0.clone(),
        p: position,
    })
    .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

pub(crate) fn decode<T: DeserializeOwned>(
    binding: &Binding,
    cursor: &str,
) -> Result<T, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let envelope: Envelope<T> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    if envelope.b != binding.0 {
        return Err(StoreError::BadCursor);
    }
    Ok(envelope.p)
}

/// A cursor that is the last sort key seen, which must start with `prefix`.
pub(crate) fn decode_sort_key(
    binding: &Binding,
    cursor: Option<&str>,
    prefix: &str,
) -> Result<Option<String>, StoreError> {
    match cursor {
        None => Ok(None),
        Some(c) => {
            let sk: String = decode(binding, c)?;
            if sk.starts_with(prefix) {
                Ok(Some(sk))
            } else {
                Err(StoreError::BadCursor)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_only_works_for_its_tenant_list_and_filters() {
        let acme = TenantId::parse("acme").unwrap();
        let other = TenantId::parse("other").unwrap();
        let b = Binding::new(&acme, "deliveries", &[Some("sub_1".into()), None]);
        let c = encode(&b, &"D#evt_1#last".to_string());
        assert_eq!(decode::<String>(&b, &c).unwrap(), "D#evt_1#last");
        for wrong in [
            Binding::new(&other, "deliveries", &[Some("sub_1".into()), None]),
            Binding::new(&acme, "subscribers", &[Some("sub_1".into()), None]),
            Binding::new(&acme, "deliveries", &[Some("sub_2".into()), None]),
            Binding::new(&acme, "deliveries", &[None, Some("sub_1".into())]),
        ] {
            assert!(matches!(
                decode::<String>(&wrong, &c),
                Err(StoreError::BadCursor)
            ));
        }
        assert!(decode::<String>(&b, "%%%").is_err());
        assert!(decode_sort_key(&b, Some(&c), "SUB#").is_err());
        assert_eq!(
            decode_sort_key(&b, Some(&c), "D#").unwrap().as_deref(),
            Some("D#evt_1#last")
        );
    }
}
