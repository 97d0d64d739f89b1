//! A DNS resolver for the delivery HTTP client that refuses non-public addresses, so that a
//! public-looking hostname which resolves to 10.x, 169.254.169.254 or loopback cannot turn
//! Skyhook into a proxy into its own network. The URL check at subscription time sees only
//! the name; this check runs on every connection, after DNS, where rebinding cannot dodge it.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use skyhook_domain::url::is_non_global_ip;

/// Looks a host name up; the system resolver in production, a fixed answer in tests.
pub type Lookup =
    Arc<dyn Fn(String) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// Why a connection was refused before it was attempted.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0} resolves only to private, loopback or otherwise non-public addresses, which deliveries may not reach outside local mode"
)]
pub struct NonPublicTarget(pub String);

/// Keeps the public addresses a name resolves to and fails when none is left. Dropping the
/// private ones (rather than failing on the first) lets dual-stack names with a stray
/// internal record still work, while never connecting anywhere private.
#[derive(Clone)]
pub struct PublicOnlyResolver {
    lookup: Lookup,
}

impl PublicOnlyResolver {
    /// Resolves with the operating system, as reqwest would by default.
    pub fn system() -> Self {
        Self::with_lookup(Arc::new(|host: String| {
            Box::pin(async move {
                tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map(|addrs| addrs.collect())
            })
        }))
    }

    pub fn with_lookup(lookup: Lookup) -> Self {
        Self { lookup }
    }

    /// The public addresses of `host`, or an error naming it.
    pub async fn public_addrs(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addrs = (self.lookup)(host.to_string()).await?;
        let public: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| !is_non_global_ip(a.ip()))
            .collect();
        if public.is_empty() {
            return Err(Box::new(NonPublicTarget(host.to_string())));
        }
        Ok(public)
    }
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = this.public_addrs(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(addrs: &'static [&'static str]) -> PublicOnlyResolver {
        PublicOnlyResolver::with_lookup(Arc::new(move |_host: String| {
            Box::pin(async move {
                Ok(addrs
                    .iter()
                    .map(|a| SocketAddr::new(a.parse().unwrap(), 0))
                    .collect())
            })
        }))
    }

    #[tokio::test]
    async fn a_public_name_resolving_to_private_addresses_is_refused() {
        for internal in [
            &["10.0.0.7"][..],
            &["169.254.169.254"],
            &["127.0.0.1", "::1"],
            &["192.168.1.10", "fd00::1"],
            &["::ffff:10.1.2.3"],
        ] {
            let err = fixed(internal)
                .public_addrs("hooks.example.com")
                .await
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("hooks.example.com resolves only to"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn private_records_are_dropped_and_public_ones_kept() {
        let addrs = fixed(&["10.0.0.7", "93.184.216.34", "fe80::1"])
            .public_addrs("hooks.example.com")
            .await
            .unwrap();
        assert_eq!(addrs, vec!["93.184.216.34:0".parse().unwrap()]);
    }

    #[tokio::test]
    async fn the_resolve_trait_applies_the_same_rule() {
        let resolver = fixed(&["10.0.0.7"]);
        let name: Name = "internal.example.com".parse().unwrap();
        assert!(resolver.resolve(name).await.is_err());
        let resolver = fixed(&["93.184.216.34"]);
        let name: Name = "hooks.example.com".parse().unwrap();
        let got: Vec<SocketAddr> = resolver.resolve(name).await.unwrap().collect();
        assert_eq!(got.len(), 1);
    }
}
