//! The operator commands' client for Skyhook's HTTP API, and the errors every command
//! reports, each with an exit code scripts can rely on.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

pub const API_URL: &str = "SKYHOOK_API_URL";
pub const API_KEY: &str = "SKYHOOK_API_KEY";
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:3000";

/// Exit codes: `0` success, `1` the API refused the request or a check failed, `2` the
/// command was used wrongly (bad flags, missing key, unreadable file), `3` the API could not
/// be reached or failed on its side.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach the Skyhook API at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Api { status, .. } if *status >= 500 => 3,
            CliError::Api { .. } | CliError::Failed(_) => 1,
            CliError::Unreachable { .. } => 3,
        }
    }
}

#[derive(Clone)]
pub struct ApiClient {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// `url` and `key` come from flags or `SKYHOOK_API_URL` / `SKYHOOK_API_KEY`.
    pub fn new(url: Option<String>, key: Option<String>) -> Result<Self, CliError> {
        let base = url
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| CliError::Usage(format!("{API_URL} {base:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!("{API_URL} must be an http(s) URL")));
        }
        if let Some(warning) = plaintext_warning(&parsed) {
            eprintln!("{warning}");
        }
        let key = key.filter(|k| !k.trim().is_empty()).ok_or_else(|| {
            CliError::Usage(format!(
                "no API key: set {API_KEY} or pass --api-key (skyhook local prints one)"
            ))
        })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(format!("skyhook-cli/{}", skyhook_domain::VERSION))
            .build()
            .map_err(|e| CliError::Failed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            http,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request; a non-2xx answer becomes [`CliError::Api`] with the API's code and
    /// message. Returns `Value::Null` for an empty body (e.g. `204`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            detail: error_chain(&e),
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            detail: error_chain(&e),
        })?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let code = value["error"]["code"]
            .as_str()
            .unwrap_or("http_error")
            .to_string();
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("the API answered HTTP {status}"));
        Err(CliError::Api {
            status,
            code,
            message,
        })
    }
}

/// A warning for an API URL that would carry the API key in the clear to another machine:
/// `http://` to anything but this machine's loopback.
pub fn plaintext_warning(url: &reqwest::Url) -> Option<String> {
    if url.scheme() != "http" {
        return None;
    }
    let loopback = match url.host()? {
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    (!loopback).then(|| {
        format!(
            "warning: {API_URL} {url} is plain http to another machine: the API key goes over the network unencrypted. Use https."
        )
    })
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_tell_usage_refusal_and_outage_apart() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        let api = |status| CliError::Api {
            status,
            code: "c".into(),
            message: "m".into(),
        };
        assert_eq!(api(404).exit_code(), 1);
        assert_eq!(api(503).exit_code(), 3);
        let down = CliError::Unreachable {
            url: "u".into(),
            detail: "d".into(),
        };
        assert_eq!(down.exit_code(), 3);
    }

    #[test]
    fn plain_http_to_another_machine_is_warned_about() {
        let warn = |u: &str| plaintext_warning(&reqwest::Url::parse(u).unwrap()).is_some();
        for quiet in [
            "https://api.example.com",
            "http://127.0.0.1:3000",
            "http://127.8.0.1",
            "http://localhost:3000",
            "http://LOCALHOST.:3000",
            "http://app.localhost",
            "http://[::1]:3000",
            "http://[::ffff:127.0.0.1]:3000",
        ] {
            assert!(!warn(quiet), "{quiet}");
        }
        for loud in [
            "http://api.example.com",
            "http://10.0.0.5:3000",
            "http://0.0.0.0:3000",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
        ] {
            assert!(warn(loud), "{loud}");
        }
    }

    #[test]
    fn a_key_is_required_and_urls_are_checked() {
        assert_eq!(ApiClient::new(None, None).err().unwrap().exit_code(), 2);
        assert!(ApiClient::new(Some("ftp://x".into()), Some("k".into())).is_err());
        let c = ApiClient::new(Some("http://127.0.0.1:9/".into()), Some("k".into())).unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:9");
    }
}
