//! The operator commands' client for Skyhook's HTTP API, and the errors every command
//! reports, each with an exit code scripts can rely on.

use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

use skyhook_api_types::ErrorBody;
use skyhook_domain::model::error_chain;

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

    /// `GET path?query`, the answer decoded as `T`. The query is serialized with
    /// `serde_urlencoded`, so its values are percent-encoded; fields that are `None` are left
    /// out, and an empty query adds no `?`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &impl Serialize,
    ) -> Result<Answer<T>, CliError> {
        let target = with_query(path, query)?;
        let raw = self.request(Method::GET, &target, None, &[]).await?;
        decode(&Method::GET, path, raw)
    }

    /// Sends `body` (if any) as JSON and decodes the answer as `T`. An empty answer (`204`)
    /// decodes as JSON `null`, which `()`, `Option` and [`IgnoredAny`] accept.
    pub async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        headers: &[(&str, &str)],
    ) -> Result<Answer<T>, CliError> {
        let body = body
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| CliError::Failed(format!("cannot encode the request to {path}: {e}")))?;
        let raw = self.request(method.clone(), path, body, headers).await?;
        decode(&method, path, raw)
    }

    /// `DELETE path`; whatever the answer holds is ignored.
    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        self.send::<(), IgnoredAny>(Method::DELETE, path, None, &[])
            .await
            .map(|_| ())
    }

    /// Sends one request and returns the answer's text; a non-2xx answer becomes
    /// [`CliError::Api`] with the API's code and message.
    async fn request(
        &self,
        method: Method,
        target: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<String, CliError> {
        let url = format!("{}{target}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
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
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(refusal(status, &text))
        }
    }
}

/// A decoded answer, and the text it was decoded from: `--json` prints the server's own JSON,
/// not the CLI's reading of it, so fields the CLI does not know about are shown too.
#[derive(Debug)]
pub struct Answer<T> {
    pub body: T,
    raw: String,
}

impl<T> Answer<T> {
    /// The answer's text as received; empty for an empty answer.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The answer as JSON, in the server's key order (`null` for an empty answer). Its
    /// `Display` is the compact single-line form `--json` prints.
    pub fn json(&self) -> Value {
        if self.raw.is_empty() {
            Value::Null
        } else {
            // The text already decoded as `T`, so it is JSON.
            serde_json::from_str(&self.raw).unwrap_or(Value::Null)
        }
    }
}

/// `path` with `query` as its query string.
pub fn with_query(path: &str, query: &impl Serialize) -> Result<String, CliError> {
    let qs = serde_urlencoded::to_string(query)
        .map_err(|e| CliError::Failed(format!("cannot encode the query of {path}: {e}")))?;
    Ok(if qs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{qs}")
    })
}

/// Decodes a 2xx answer. One that does not fit `T` means the CLI and the API disagree on the
/// API; that is an error rather than a guess at what the answer meant.
pub fn decode<T: DeserializeOwned>(
    method: &Method,
    path: &str,
    raw: String,
) -> Result<Answer<T>, CliError> {
    let text = if raw.is_empty() { "null" } else { raw.as_str() };
    match serde_json::from_str(text) {
        Ok(body) => Ok(Answer { body, raw }),
        Err(e) => Err(CliError::Failed(format!(
            "unexpected answer from {method} {path}: {e}"
        ))),
    }
}

/// The error for a non-2xx answer: the API's code and message when the body is an
/// [`ErrorBody`], otherwise the status alone.
fn refusal(status: u16, text: &str) -> CliError {
    let (code, message) = match serde_json::from_str::<ErrorBody>(text) {
        Ok(ErrorBody { error }) => (error.code, error.message),
        Err(_) => (
            "http_error".to_string(),
            format!("the API answered HTTP {status}"),
        ),
    };
    CliError::Api {
        status,
        code,
        message,
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
    fn query_strings_are_percent_encoded_and_skip_what_is_absent() {
        use skyhook_api_types::query::{DeliveriesQuery, PageQuery, SubscribersQuery};
        use skyhook_api_types::{Cursor, Limit, Timestamp};
        use skyhook_domain::ids::SubscriberId;
        use skyhook_domain::model::Outcome;

        let q = DeliveriesQuery {
            subscriber_id: Some(SubscriberId::parse("sub_01ABC").unwrap()),
            outcome: Some(Outcome::Failure),
            since: Timestamp::parse("2026-01-02T03:04:05+01:00"),
            limit: Limit::new(250),
            cursor: Some(Cursor("a+b/c= d&e".into())),
            ..DeliveriesQuery::default()
        };
        assert_eq!(
            with_query("/v1/deliveries", &q).unwrap(),
            "/v1/deliveries?subscriber_id=sub_01ABC&outcome=failure\
             &since=2026-01-02T02%3A04%3A05.000Z&limit=250&cursor=a%2Bb%2Fc%3D+d%26e"
        );
        let active = SubscribersQuery {
            limit: Limit::new(5),
            active: Some(false),
            ..SubscribersQuery::default()
        };
        assert_eq!(
            with_query("/v1/subscribers", &active).unwrap(),
            "/v1/subscribers?limit=5&active=false"
        );
        assert_eq!(
            with_query("/v1/api-keys", &PageQuery::default()).unwrap(),
            "/v1/api-keys"
        );
        assert_eq!(with_query("/v1/stats", &()).unwrap(), "/v1/stats");
    }

    #[test]
    fn answers_decode_into_their_type_and_keep_their_text() {
        use skyhook_api_types::dlq::RedriveResult;

        let raw = r#"{"redriven":2,"dropped":1,"complete":false,"extra":{"z":1,"a":2}}"#;
        let answer: Answer<RedriveResult> =
            decode(&Method::POST, "/v1/dlq/redrive", raw.to_string()).unwrap();
        assert_eq!(answer.body.redriven, 2);
        assert!(!answer.body.complete);
        assert_eq!(answer.raw(), raw);
        assert_eq!(
            answer.json().to_string(),
            raw,
            "compact, in the server's order"
        );

        let empty: Answer<IgnoredAny> =
            decode(&Method::DELETE, "/v1/api-keys/k", String::new()).unwrap();
        assert_eq!(empty.json(), Value::Null);
    }

    #[test]
    fn an_answer_that_does_not_decode_names_the_route() {
        use skyhook_api_types::subscribers::RotatedSecret;

        let err = decode::<RotatedSecret>(
            &Method::POST,
            "/v1/subscribers/sub_1/rotate-secret",
            r#"{"id":"sub_1"}"#.to_string(),
        )
        .unwrap_err();
        assert!(matches!(err, CliError::Failed(_)), "{err:?}");
        assert_eq!(err.exit_code(), 1);
        let text = err.to_string();
        assert!(
            text.contains("POST /v1/subscribers/sub_1/rotate-secret"),
            "{text}"
        );
        assert!(text.contains("missing field `secret`"), "{text}");
        let not_json = decode::<RotatedSecret>(&Method::GET, "/v1/x", "<html>".into());
        assert!(not_json.is_err());
    }

    #[test]
    fn refusals_carry_the_api_code_and_message() {
        let body = r#"{"error":{"code":"invalid_limit","message":"limit must be a number from 1 to 250"}}"#;
        let err = refusal(400, body);
        assert_eq!(
            err.to_string(),
            "limit must be a number from 1 to 250 (invalid_limit, HTTP 400)"
        );
        assert_eq!(err.exit_code(), 1);
        let err = refusal(502, "Bad Gateway");
        assert_eq!(
            err.to_string(),
            "the API answered HTTP 502 (http_error, HTTP 502)"
        );
        assert_eq!(err.exit_code(), 3);
    }

    #[test]
    fn a_key_is_required_and_urls_are_checked() {
        assert_eq!(ApiClient::new(None, None).err().unwrap().exit_code(), 2);
        assert!(ApiClient::new(Some("ftp://x".into()), Some("k".into())).is_err());
        let c = ApiClient::new(Some("http://127.0.0.1:9/".into()), Some("k".into())).unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:9");
    }
}
