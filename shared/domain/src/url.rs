//! Subscriber endpoint URLs, checked once so that Skyhook cannot be aimed at itself or a
//! private network (server-side request forgery) outside local mode.
//!
//! The host check here sees only what the URL says; a public name that resolves to a private
//! address is stopped at connect time by a resolver that applies [`is_non_global_ip`] too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// What the API shows in place of a secret: a custom header's value (the values are
/// receiver credentials, kept with the signing secret in Secrets Manager, and sent back in
/// a `PATCH` it keeps the value stored under that name), or a URL's query string.
pub const MASKED_VALUE: &str = "********";

/// Longest URL accepted: browsers and most servers stop around here, and it bounds what we
/// store per subscriber.
pub const MAX_URL_LEN: usize = 2048;

/// Which targets a subscriber URL may point at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Local mode: allows `http://` and loopback or private targets, for receivers on the
    /// developer's own machine.
    pub allow_insecure: bool,
}

impl UrlPolicy {
    /// Production: `https` only, public targets only.
    pub const STRICT: Self = Self {
        allow_insecure: false,
    };
    /// `skyhook local`: anything `http`/`https` with a host.
    pub const LOCAL: Self = Self {
        allow_insecure: true,
    };
}

/// Why a subscriber URL was refused. [`UrlError::code`] is part of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("url is not valid: {0}")]
    Invalid(String),
    #[error("url is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("url scheme {0:?} is not supported; use https")]
    UnsupportedScheme(String),
    #[error("url must use https (http is allowed only in local mode)")]
    Insecure,
    #[error("url must not contain a username or password; use custom headers for credentials")]
    Credentials,
    #[error("url must not contain a #fragment; it is never sent to the server")]
    Fragment,
    #[error("url must have a host")]
    MissingHost,
    #[error(
        "url points at a loopback, private or otherwise non-public address, which is allowed only in local mode"
    )]
    ForbiddenTarget,
}

impl UrlError {
    /// Stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_url",
            Self::TooLong => "url_too_long",
            Self::UnsupportedScheme(_) => "unsupported_scheme",
            Self::Insecure => "insecure_url",
            Self::Credentials => "url_has_credentials",
            Self::Fragment => "url_has_fragment",
            Self::MissingHost => "missing_host",
            Self::ForbiddenTarget => "forbidden_target",
        }
    }
}

/// An endpoint Skyhook may POST deliveries to, in the url crate's normalised form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SubscriberUrl(Url);

impl SubscriberUrl {
    pub fn parse(s: &str, policy: UrlPolicy) -> Result<Self, UrlError> {
        if s.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let url = Url::parse(s).map_err(|e| UrlError::Invalid(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_insecure => {}
            "http" => return Err(UrlError::Insecure),
            other => return Err(UrlError::UnsupportedScheme(other.to_owned())),
        }
        // Credentials in a URL end up in logs and API responses; headers are the place for them.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        let forbidden = match url.host() {
            None => return Err(UrlError::MissingHost),
            Some(Host::Domain(name)) => is_localhost_name(name),
            Some(Host::Ipv4(ip)) => is_non_global_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => is_non_global_ip(IpAddr::V6(ip)),
        };
        if forbidden && !policy.allow_insecure {
            return Err(UrlError::ForbiddenTarget);
        }
        // Normalisation can lengthen the text (percent-encoding), and the limit is on what we store.
        if url.as_str().len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for SubscriberUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for SubscriberUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Reads with [`UrlPolicy::LOCAL`]: stored URLs were checked against the policy in force when
/// they were written, and a record must stay readable if that policy was local mode. Request
/// bodies should therefore take a `String` and call [`SubscriberUrl::parse`] with the real policy.
impl<'de> serde::Deserialize<'de> for SubscriberUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw, UrlPolicy::LOCAL).map_err(serde::de::Error::custom)
    }
}

/// `localhost` and its subdomains resolve to loopback by convention (RFC 6761), whatever DNS says.
/// `url` with the value of every query parameter masked (the names kept), for readers who
/// are not admins: a query string often carries the receiver's token.
pub fn mask_query(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        // Not a URL (it was checked when saved, so this is rare): keep what precedes `?`.
        return match url.split_once('?') {
            Some((before, _)) => format!("{before}?{}", MASKED_VALUE),
            None => url.to_string(),
        };
    };
    if parsed.query().is_none() {
        return url.to_string();
    }
    let names: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    if names.is_empty() {
        parsed.set_query(Some(MASKED_VALUE));
    } else {
        parsed
            .query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|k| (k.as_str(), MASKED_VALUE)));
    }
    parsed.to_string()
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// True for addresses a webhook must never reach outside local mode: anything not routable on
/// the public internet, plus IPv6 forms that carry such an IPv4 address inside them.
pub fn is_non_global_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_non_global_v4(v4),
        IpAddr::V6(v6) => is_non_global_v6(v6),
    }
}

fn is_non_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", including 0.0.0.0, which many stacks treat as loopback
        || a == 10
        || a == 127
        || (a == 100 && (64..=127).contains(&b)) // carrier-grade NAT, 100.64/10
        || (a == 169 && b == 254)
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation, TEST-NET-1
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224 // multicast 224/4, reserved 240/4 and broadcast
}

fn is_non_global_v6(ip: Ipv6Addr) -> bool {
    // These forms deliver to (or are translated to) an IPv4 destination, so that
    // destination decides. `::` and `::1` land here as 0.0.0.0 and 0.0.0.1, both refused.
    if let Some(v4) = embedded_ipv4(ip) {
        return is_non_global_v4(v4);
    }
    let s = ip.segments();
    (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // deprecated site-local, fec0::/10
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation, 2001:db8::/32
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking, 2001:2::/48
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only, 100::/64
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // local-use NAT64, 64:ff9b:1::/48
}

fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-compatible ::a.b.c.d (deprecated) and IPv4-mapped ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0 | 0xffff, _, _] => Some(low),
        // IPv4-translated ::ffff:0:a.b.c.d (SIIT, RFC 7915)
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        // NAT64 well-known prefix 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 6to4, 2002:a.b.c.d::/48
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strict(s: &str) -> Result<SubscriberUrl, UrlError> {
        SubscriberUrl::parse(s, UrlPolicy::STRICT)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_public_https() {
        let u = strict("https://hooks.example.com/skyhook?x=1").unwrap();
        assert_eq!(u.as_str(), "https://hooks.example.com/skyhook?x=1");
        assert_eq!(u.as_url().host_str(), Some("hooks.example.com"));
        assert_eq!(u.to_string(), u.as_str());
        assert!(strict("https://93.184.216.34:8443/").is_ok());
        assert!(strict("https://[2606:2800:220:1:248:1893:25c8:1946]/").is_ok());
    }

    #[test]
    fn normalises() {
        let u = strict("HTTPS://Hooks.Example.COM").unwrap();
        assert_eq!(u.as_str(), "https://hooks.example.com/");
    }

    #[test]
    fn rejections_have_stable_codes() {
        let cases = [
            ("not a url", "invalid_url"),
            ("https://", "invalid_url"),
            ("/relative/path", "invalid_url"),
            ("http://hooks.example.com/", "insecure_url"),
            ("ftp://hooks.example.com/", "unsupported_scheme"),
            ("mailto:ops@example.com", "unsupported_scheme"),
            (
                "https://user:pass@hooks.example.com/",
                "url_has_credentials",
            ),
            ("https://user@hooks.example.com/", "url_has_credentials"),
            ("https://hooks.example.com/#frag", "url_has_fragment"),
            ("https://hooks.example.com/#", "url_has_fragment"),
            ("https://localhost/", "forbidden_target"),
            ("https://LOCALHOST./", "forbidden_target"),
            ("https://api.localhost:8080/", "forbidden_target"),
            ("https://127.0.0.1/", "forbidden_target"),
            ("https://127.1/", "forbidden_target"),
            ("https://0x7f000001/", "forbidden_target"),
            ("https://10.1.2.3/", "forbidden_target"),
            (
                "https://169.254.169.254/latest/meta-data/",
                "forbidden_target",
            ),
            ("https://[::1]/", "forbidden_target"),
            ("https://[::ffff:192.168.0.1]/", "forbidden_target"),
            ("https://[fd00::1]/", "forbidden_target"),
        ];
        for (input, code) in cases {
            let err = strict(input).unwrap_err();
            assert_eq!(err.code(), code, "{input}: {err}");
            assert!(!err.to_string().is_empty());
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(strict(&long).unwrap_err().code(), "url_too_long");
    }

    #[test]
    fn local_mode_allows_http_and_private_targets() {
        for ok in [
            "http://localhost:9000/hook",
            "http://127.0.0.1:9000/",
            "http://[::1]/",
            "https://10.0.0.5/",
        ] {
            assert!(SubscriberUrl::parse(ok, UrlPolicy::LOCAL).is_ok(), "{ok}");
        }
        // The other checks still apply in local mode.
        for bad in [
            "ftp://localhost/",
            "http://u:p@localhost/",
            "http://localhost/#x",
        ] {
            assert!(
                SubscriberUrl::parse(bad, UrlPolicy::LOCAL).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn query_values_are_masked_and_names_kept() {
        assert_eq!(
            mask_query("https://h.example/hook?token=abc&x=1"),
            "https://h.example/hook?token=********&x=********"
        );
        assert_eq!(
            mask_query("https://h.example/hook"),
            "https://h.example/hook"
        );
        assert_eq!(
            mask_query("https://h.example/hook?secret"),
            "https://h.example/hook?secret=********"
        );
        assert_eq!(mask_query("not a url?k=v"), "not a url?********");
        assert!(!mask_query("https://h.example/?a=s3cr3t#f").contains("s3cr3t"));
    }

    #[test]
    fn lookalike_names_are_not_localhost() {
        assert!(strict("https://localhost.example.com/").is_ok());
        assert!(strict("https://mylocalhost/").is_ok());
    }

    #[test]
    fn serde_round_trip_reads_with_local_policy() {
        let u = SubscriberUrl::parse("http://localhost:9000/", UrlPolicy::LOCAL).unwrap();
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "\"http://localhost:9000/\"");
        assert_eq!(serde_json::from_str::<SubscriberUrl>(&json).unwrap(), u);
        assert!(serde_json::from_str::<SubscriberUrl>("\"ftp://x/\"").is_err());
    }

    #[test]
    fn non_global_ipv4() {
        for addr in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_non_global_ip(ip(addr)), "{addr} should be non-global");
        }
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!is_non_global_ip(ip(addr)), "{addr} should be global");
        }
    }

    #[test]
    fn non_global_ipv6() {
        for addr in [
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fdff::1",
            "ff02::1",
            "2001:db8::1",
            "2001:2::1",
            "100::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "64:ff9b:1::808:808",
            "64:ff9b:1:ffff::1",
            "2002:c0a8:101::1",
        ] {
            assert!(is_non_global_ip(ip(addr)), "{addr} should be non-global");
        }
        for addr in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "::ffff:0:808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_non_global_ip(ip(addr)), "{addr} should be global");
        }
    }

    proptest! {
        #[test]
        fn mapped_ipv6_is_judged_by_its_ipv4_part(raw: u32) {
            let v4 = Ipv4Addr::from(raw);
            prop_assert_eq!(
                is_non_global_ip(IpAddr::V6(v4.to_ipv6_mapped())),
                is_non_global_ip(IpAddr::V4(v4))
            );
        }

        #[test]
        fn agrees_with_std_where_std_is_stable(raw: u32) {
            let v4 = Ipv4Addr::from(raw);
            if v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()
                || v4.is_multicast() || v4.is_broadcast() || v4.is_documentation()
            {
                prop_assert!(is_non_global_ip(IpAddr::V4(v4)));
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,100}", local: bool) {
            let policy = UrlPolicy { allow_insecure: local };
            if let Ok(u) = SubscriberUrl::parse(&s, policy) {
                prop_assert!(u.as_str().starts_with("http"));
                prop_assert_eq!(SubscriberUrl::parse(u.as_str(), policy), Ok(u.clone()));
            }
        }

        #[test]
        fn strict_accepts_public_hosts(host in "[a-z]{1,10}\\.(com|org|net|io)", path in "[a-z0-9/]{0,20}") {
            let s = format!("https://{host}/{path}");
            prop_assert_eq!(strict(&s).map(|u| u.as_str().to_owned()), Ok(s));
        }
    }
}
