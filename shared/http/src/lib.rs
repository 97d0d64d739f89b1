//! HTTP plumbing shared by the ingest and management routers: the one error type and its
//! JSON shape ([`error`]), extractors and bounded JSON body reading ([`extractors`]), and
//! API-key authentication ([`auth`]).

pub mod auth;
pub mod error;
pub mod extractors;
pub mod responses;

pub use auth::*;
pub use error::*;
pub use extractors::*;
pub use skyhook_domain::model::Role;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use http::{HeaderMap, StatusCode};
    use skyhook_domain::config::AdminKeySource;
    use skyhook_domain::ids::{ApiKeyId, TenantId};
    use skyhook_domain::ports::{ApiKeyStore, SecretValues, StoreError};

    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[tokio::test]
    async fn admin_key_authenticates_as_default_tenant_admin() {
        let auth = Authenticator::new(AdminKeySource::Value("sk_test_0123456789".into()), None);
        let p = auth
            .authenticate(&headers(Some("Bearer sk_test_0123456789")))
            .await
            .unwrap();
        assert_eq!(p.role, Role::Admin);
        assert_eq!(p.tenant, TenantId::default_tenant());
    }

    #[tokio::test]
    async fn missing_malformed_and_wrong_keys_are_401() {
        let auth = Authenticator::new(AdminKeySource::Value("sk_test_0123456789".into()), None);
        for h in [
            headers(None),
            headers(Some("sk_test_0123456789")),
            headers(Some("Bearer ")),
            headers(Some("Bearer sk_test_012345678")),
        ] {
            let err = auth.authenticate(&h).await.unwrap_err();
            assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn roles_are_ordered_reader_publisher_admin() {
        let reader = Principal {
            tenant: TenantId::default_tenant(),
            role: Role::Reader,
            key_id: Some(ApiKeyId::new()),
        };
        assert!(reader.require(Role::Reader).is_ok());
        assert_eq!(
            reader.require(Role::Publisher).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn issued_keys_authenticate_as_their_tenant_and_role() {
        use skyhook_domain::memory::MemoryApiKeyStore;
        let store = Arc::new(MemoryApiKeyStore::default());
        let key = generate_api_key();
        assert!(key.starts_with("sk_") && key.len() == 46, "{key}");
        let stored = skyhook_domain::model::ApiKey {
            id: ApiKeyId::new(),
            tenant: TenantId::parse("acme").unwrap(),
            role: Role::Publisher,
            description: None,
            created_at: chrono::Utc::now(),
            created_by: BOOTSTRAP_ACTOR.into(),
        };
        store.create(&stored, &api_key_digest(&key)).await.unwrap();
        let auth = Authenticator::new(AdminKeySource::Value("sk_test_0123456789".into()), None)
            .with_key_store(store.clone());
        let p = auth
            .authenticate(&headers(Some(&format!("Bearer {key}"))))
            .await
            .unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(p.role, Role::Publisher);
        assert_eq!(p.key_id.as_ref(), Some(&stored.id));
        assert_eq!(p.actor(), stored.id.to_string());
        let other = generate_api_key();
        let err = auth
            .authenticate(&headers(Some(&format!("Bearer {other}"))))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        store.delete(&stored.tenant, &stored.id).await.unwrap();
        let err = auth
            .authenticate(&headers(Some(&format!("Bearer {key}"))))
            .await
            .unwrap_err();
        assert_eq!(
            err.status,
            StatusCode::UNAUTHORIZED,
            "a deleted key stops working"
        );
    }

    /// A secret that can be changed, or made to fail, as the test goes.
    #[derive(Default)]
    struct FakeSecret {
        value: std::sync::Mutex<Option<String>>,
        failing: std::sync::atomic::AtomicBool,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl SecretValues for FakeSecret {
        async fn secret_string(&self, _id: &str) -> Result<Option<String>, StoreError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::unavailable("Secrets Manager", "throttled"));
            }
            Ok(self.value.lock().unwrap().clone())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rotated_admin_key_takes_effect_within_the_ttl_and_issued_keys_never_need_it() {
        use skyhook_domain::memory::MemoryApiKeyStore;
        let secret = Arc::new(FakeSecret::default());
        *secret.value.lock().unwrap() = Some("sk_old_0123456789".into());
        let store = Arc::new(MemoryApiKeyStore::default());
        let issued = generate_api_key();
        let stored = skyhook_domain::model::ApiKey {
            id: ApiKeyId::new(),
            tenant: TenantId::parse("acme").unwrap(),
            role: Role::Reader,
            description: None,
            created_at: chrono::Utc::now(),
            created_by: BOOTSTRAP_ACTOR.into(),
        };
        store
            .create(&stored, &api_key_digest(&issued))
            .await
            .unwrap();
        let auth = Authenticator::new(
            AdminKeySource::Secret("admin".into()),
            Some(secret.clone() as Arc<dyn SecretValues>),
        )
        .with_key_store(store);
        let old = headers(Some("Bearer sk_old_0123456789"));
        let new = headers(Some("Bearer sk_new_0123456789"));
        assert_eq!(auth.authenticate(&old).await.unwrap().role, Role::Admin);
        assert_eq!(auth.authenticate(&old).await.unwrap().role, Role::Admin);
        assert_eq!(
            secret.reads.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "cached"
        );

        // Rotated: the old key works until the TTL runs out, then only the new one.
        *secret.value.lock().unwrap() = Some("sk_new_0123456789".into());
        tokio::time::advance(ADMIN_KEY_TTL - std::time::Duration::from_secs(1)).await;
        assert!(auth.authenticate(&old).await.is_ok());
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert_eq!(
            auth.authenticate(&old).await.unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(auth.authenticate(&new).await.unwrap().role, Role::Admin);

        // Secrets Manager failing: issued keys still work; the bootstrap key is 503, not 401.
        secret
            .failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::advance(ADMIN_KEY_TTL).await;
        let p = auth
            .authenticate(&headers(Some(&format!("Bearer {issued}"))))
            .await
            .unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(
            auth.authenticate(&new).await.unwrap_err().status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // Back: read again at once, not after another TTL.
        secret
            .failing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(auth.authenticate(&new).await.unwrap().role, Role::Admin);
    }

    #[test]
    fn bodies_are_objects_and_errors_do_not_quote_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct B {
            name: String,
            headers: Option<std::collections::BTreeMap<String, String>>,
        }
        let err = parse_json::<B>(br#"["a", null]"#).unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        );
        assert!(err.message.contains("an array"), "{}", err.message);
        let err = parse_json::<B>(br#"{"name": "a", "headers": "x-api-key: s3cr3t"}"#).unwrap_err();
        assert_eq!(err.code, "invalid_body");
        assert!(!err.message.contains("s3cr3t"), "{}", err.message);
        assert!(err.message.contains("expected a map"), "{}", err.message);
        assert_eq!(
            parse_json::<B>(b"{nope").unwrap_err().code,
            "malformed_json"
        );
        assert!(parse_json::<B>(br#"{"name": "a"}"#).is_ok());
        assert_eq!(
            redact_values(r#"invalid value: string "a \" b", expected x"#),
            "invalid value: string, expected x"
        );
        assert_eq!(
            redact_values(r#"invalid type: string "\", TOKEN", expected a map"#),
            "invalid type: string, expected a map"
        );
        assert_eq!(
            redact_values("unknown variant `s3cr3t`, expected one of `a`, `b`"),
            "unknown variant, expected one of `a`, `b`"
        );
    }

    #[tokio::test]
    async fn bad_query_strings_are_400_in_the_error_shape() {
        use axum::extract::FromRequestParts;
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<u32>,
        }
        let (mut parts, _) = http::Request::builder()
            .uri("/v1/x?limit=1&limit=2")
            .body(())
            .unwrap()
            .into_parts();
        let err = match ApiQuery::<Q>::from_request_parts(&mut parts, &()).await {
            Err(e) => e,
            Ok(_) => panic!("a duplicate field is refused"),
        };
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "invalid_query");
        let (mut parts, _) = http::Request::builder()
            .uri("/v1/x?limit=5")
            .body(())
            .unwrap()
            .into_parts();
        let ApiQuery(q) = ApiQuery::<Q>::from_request_parts(&mut parts, &())
            .await
            .ok()
            .unwrap();
        assert_eq!(q.limit, Some(5));
    }

    #[tokio::test]
    async fn an_oversized_body_is_413_and_a_broken_one_400() {
        let big = read_body(Body::from(vec![b'x'; 2048]), 1024)
            .await
            .unwrap_err();
        assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
        let broken = futures::stream::iter(vec![
            Ok(axum::body::Bytes::from_static(b"{\"a\":")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let err = read_body(Body::from_stream(broken), 1024)
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "unreadable_body");
        assert_eq!(read_body(Body::from("ok"), 1024).await.unwrap(), "ok");
        type Fields = std::collections::BTreeMap<String, u32>;
        let empty: Fields = read_optional_json(Body::from(" \n"), 1024).await.unwrap();
        assert!(empty.is_empty());
        let given: Fields = read_optional_json(Body::from(r#"{"n": 7}"#), 1024)
            .await
            .unwrap();
        assert_eq!(given["n"], 7);
    }

    #[test]
    fn json_errors_distinguish_syntax_from_shape() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        assert_eq!(parse_json::<T>(b"{").unwrap_err().code, "malformed_json");
        assert_eq!(parse_json::<T>(b"").unwrap_err().code, "malformed_json");
        let shape = parse_json::<T>(br#"{"a":"x"}"#).unwrap_err();
        assert_eq!(shape.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(parse_json::<T>(br#"{"a":1}"#).is_ok());
    }

    #[test]
    fn store_errors_map_to_statuses_without_leaking_detail() {
        let e: ApiError = StoreError::unavailable("DynamoDB", "secret internal detail").into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.message.contains("secret internal detail"));
        let e: ApiError = StoreError::BadCursor.into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
