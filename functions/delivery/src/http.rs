//! The request to the subscriber's endpoint: the HTTP client every delivery uses, the signed
//! POST, and what came back as a typed [`Answer`].

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header as http_header;

use skyhook_domain::model::{
    CORRELATION_HEADER, DeliveryMessage, MASKED_VALUE, RESERVED_HEADERS, Subscriber, error_chain,
};
use skyhook_domain::retry::parse_retry_after;
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::delivery_headers;
use skyhook_domain::url::{SubscriberUrl, UrlPolicy};

use crate::resolver;

/// Response bodies are kept in the attempt log up to this many bytes.
pub const MAX_LOGGED_BODY_BYTES: usize = 4096;

fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // Proxy variables in the environment would send every delivery through a proxy,
        // which resolves the name itself: past the public-only resolver.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(format!("Skyhook/{}", skyhook_domain::VERSION))
        .pool_idle_timeout(Duration::from_secs(60))
}

/// The HTTP client every delivery uses: built once per process, never follows redirects
/// (a 3xx is a failure), bounded by the attempt timeout, rustls only. It reaches any
/// address, as local mode wants; see [`http_client_for`]. An error (the TLS stack failed to
/// start) stops start-up: a fallback client would break those rules.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    client_builder(timeout).build()
}

/// [`http_client`], and outside local mode one whose DNS answers are filtered to public
/// addresses, so a hostname that resolves into a private network is refused at connect time.
pub fn http_client_for(
    timeout: Duration,
    local_mode: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    if local_mode {
        return http_client(timeout);
    }
    client_builder(timeout)
        .dns_resolver(resolver::PublicOnlyResolver::system())
        .build()
}

/// What one request to the endpoint came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A response: its status, the start of its body, and the `Retry-After` it asked for.
    /// A body that could not be read in full names why in `read_error`.
    Status {
        code: u16,
        body: Option<String>,
        retry_after: Option<Duration>,
        read_error: Option<String>,
    },
    /// No response: the URL was refused, the connection failed or the request timed out.
    NoResponse(String),
}

/// How the attempt is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Delivered,
    /// 410: the endpoint says it will not come back.
    Gone,
    /// Anything else: retried on the schedule.
    Failed,
}

impl Answer {
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Status { code, .. } => Some(*code),
            Answer::NoResponse(_) => None,
        }
    }

    pub fn body(&self) -> Option<&str> {
        match self {
            Answer::Status { body, .. } => body.as_deref(),
            Answer::NoResponse(_) => None,
        }
    }

    pub fn verdict(&self) -> Verdict {
        match self.status() {
            Some(200..=299) => Verdict::Delivered,
            Some(410) => Verdict::Gone,
            _ => Verdict::Failed,
        }
    }

    /// The error the attempt log shows; `None` for a delivery.
    pub fn error(&self) -> Option<String> {
        match self {
            Answer::Status { code, .. } if (200..300).contains(code) => None,
            Answer::Status {
                read_error: Some(e),
                ..
            } => Some(e.clone()),
            Answer::Status { code, .. } if (300..400).contains(code) => {
                Some(format!("HTTP {code}: redirects are not followed"))
            }
            Answer::Status { code, .. } => Some(format!("HTTP {code}")),
            Answer::NoResponse(e) => Some(e.clone()),
        }
    }

    /// The wait the endpoint asked for, honoured only with a 429 or a 503.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Answer::Status {
                code: 429 | 503,
                retry_after,
                ..
            } => *retry_after,
            _ => None,
        }
    }
}

/// One signed request, as [`post`] sends it.
pub struct Request<'a> {
    pub subscriber: &'a Subscriber,
    pub message: &'a DeliveryMessage,
    pub body: Vec<u8>,
    pub secrets: &'a [SigningSecret],
    /// The custom header values, kept with the secret; `None` for a subscriber saved
    /// before they were, whose record holds them.
    pub headers: Option<&'a BTreeMap<String, String>>,
    /// When the request is signed and sent.
    pub now: DateTime<Utc>,
}

/// Signs and POSTs one delivery. A subscriber saved in local mode, or written past the API,
/// is held to the rules of this deployment (`policy`) here; no connection is made. (In
/// local mode every stored URL already passed the local rules when it was saved.)
pub async fn post(
    http: &reqwest::Client,
    policy: UrlPolicy,
    timeout: Duration,
    request: Request<'_>,
) -> Answer {
    let Request {
        subscriber,
        message,
        body,
        secrets,
        headers,
        now,
    } = request;
    if !policy.allow_insecure
        && let Err(e) = SubscriberUrl::parse(subscriber.url.as_str(), policy)
    {
        return Answer::NoResponse(format!("{}: {e}", e.code()));
    }
    let mut builder = http
        .post(subscriber.url.as_url().clone())
        .header(http_header::CONTENT_TYPE, "application/json")
        .header(CORRELATION_HEADER, &message.correlation_id);
    for (name, value) in headers.unwrap_or(&subscriber.headers) {
        if !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) && value != MASKED_VALUE
        {
            builder = builder.header(name, value);
        }
    }
    for (name, value) in delivery_headers(
        subscriber.signature_scheme,
        secrets,
        message.event_id.as_str(),
        now.timestamp(),
        &body,
    ) {
        builder = builder.header(name, value);
    }
    let response = match builder.body(body).send().await {
        Ok(r) => r,
        Err(e) => return Answer::NoResponse(describe_error(&e, Some(timeout))),
    };
    let code = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(http_header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let (body, read_error) = read_limited(response, MAX_LOGGED_BODY_BYTES).await;
    Answer::Status {
        code,
        body: Some(body).filter(|b| !b.is_empty()),
        retry_after,
        read_error,
    }
}

/// Reads at most `max` bytes of a response body; the rest is not downloaded.
async fn read_limited(mut response: reqwest::Response, max: usize) -> (String, Option<String>) {
    let mut buf = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                buf.extend_from_slice(&chunk);
                if buf.len() >= max {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return (
                    truncate_utf8(buf, max),
                    Some(format!(
                        "reading the response failed: {}",
                        describe_error(&e, None)
                    )),
                );
            }
        }
    }
    (truncate_utf8(buf, max), None)
}

fn truncate_utf8(mut bytes: Vec<u8>, max: usize) -> String {
    bytes.truncate(max);
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    }
}

/// Describes a transport error without the URL, whose query string may carry a token.
fn describe_error(err: &reqwest::Error, timeout: Option<Duration>) -> String {
    if err.is_timeout() {
        return match timeout {
            Some(t) => format!("timed out after {}", humanize(t)),
            None => "timed out".to_string(),
        };
    }
    let kind = if err.is_connect() {
        "connection failed"
    } else if err.is_request() {
        "request failed"
    } else {
        "error"
    };
    // The sources only: the error's own text names the URL.
    match std::error::Error::source(err) {
        Some(source) => format!("{kind}: {}", error_chain(source)),
        None => kind.to_string(),
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_never_splits_a_utf8_character() {
        let s = "é".repeat(3000).into_bytes();
        let out = truncate_utf8(s, 4095);
        assert!(out.len() <= 4095);
        assert!(out.chars().all(|c| c == 'é'));
    }

    fn status(code: u16) -> Answer {
        Answer::Status {
            code,
            body: None,
            retry_after: Some(Duration::from_secs(7)),
            read_error: None,
        }
    }

    #[test]
    fn answers_are_judged_by_status_and_name_their_error() {
        assert_eq!(status(204).verdict(), Verdict::Delivered);
        assert_eq!(status(204).error(), None);
        assert_eq!(status(410).verdict(), Verdict::Gone);
        assert_eq!(status(500).verdict(), Verdict::Failed);
        assert_eq!(status(500).error().as_deref(), Some("HTTP 500"));
        assert_eq!(
            status(302).error().as_deref(),
            Some("HTTP 302: redirects are not followed")
        );
        let timeout = Answer::NoResponse("timed out after 15s".into());
        assert_eq!(timeout.verdict(), Verdict::Failed);
        assert_eq!(timeout.error().as_deref(), Some("timed out after 15s"));
        // Retry-After counts only with 429 and 503.
        assert_eq!(status(429).retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(status(503).retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(status(500).retry_after(), None);
        // A 2xx whose body could not be read is still delivered.
        let cut = Answer::Status {
            code: 200,
            body: None,
            retry_after: None,
            read_error: Some("reading the response failed: error".into()),
        };
        assert_eq!((cut.verdict(), cut.error()), (Verdict::Delivered, None));
    }
}
