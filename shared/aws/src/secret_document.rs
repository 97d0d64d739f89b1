//! A subscriber's secret document: its signing secret, the one a rotation replaced with
//! the end of that one's grace period, and the values of its custom headers. Stored sealed
//! in the table (`dynamodb::sealed`), and as the value of a legacy Secrets Manager secret.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use skyhook_domain::model::{format_time, parse_time};
use skyhook_domain::ports::SubscriberSecrets;
use skyhook_domain::secret::SigningSecret;

/// The JSON value of a subscriber's secret.
#[derive(Serialize, Deserialize)]
pub(crate) struct Document {
    /// The current signing secret, `whsec_…`.
    pub secret: String,
    /// The secret a rotation replaced, signing alongside until `previous_until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<String>,
    /// Custom header values; absent in a document written from a bare secret's rotation
    /// (the subscriber record still holds them then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

/// A document, checked.
pub(crate) struct Parsed {
    current: SigningSecret,
    previous: Option<(SigningSecret, DateTime<Utc>)>,
    headers: Option<BTreeMap<String, String>>,
}

impl Document {
    /// What a subscriber's secrets are now, as a document to write back.
    pub fn of(now: &SubscriberSecrets) -> Self {
        let previous = now.signing.get(1).map(SigningSecret::expose);
        Document {
            secret: now
                .signing
                .first()
                .map(SigningSecret::expose)
                .unwrap_or_default(),
            previous_until: previous.as_ref().and(now.previous_until).map(format_time),
            previous,
            headers: now.headers.clone(),
        }
    }

    pub fn parse(self) -> Result<Parsed, String> {
        let current = SigningSecret::parse(&self.secret).map_err(|e| e.to_string())?;
        let previous = match (self.previous, self.previous_until) {
            (None, _) => None,
            (Some(p), Some(until)) => Some((
                SigningSecret::parse(&p).map_err(|e| format!("previous: {e}"))?,
                parse_time(&until).ok_or("previous_until is not a time")?,
            )),
            (Some(_), None) => return Err("a previous secret without previous_until".into()),
        };
        Ok(Parsed {
            current,
            previous,
            headers: self.headers,
        })
    }
}

impl Parsed {
    /// The secrets to sign with: the previous one only until its grace period ends.
    pub fn secrets(self) -> SubscriberSecrets {
        let mut out = SubscriberSecrets::current(self.current);
        if let Some((previous, until)) = self.previous
            && Utc::now() < until
            && previous != out.signing[0]
        {
            out.signing.push(previous);
            out.previous_until = Some(until);
        }
        out.headers = self.headers;
        out
    }
}
