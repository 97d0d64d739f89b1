//! The commands, one module per command group: each holds its group's flags (the clap
//! types `main.rs` names) and the bodies that run them; `args` holds the flags several
//! groups share.

pub mod api_keys;
pub mod args;
pub mod deliveries;
pub mod dlq;
pub mod events;
pub mod keyring;
pub mod listen;
pub mod local;
pub mod output;
pub mod sources;
pub mod subscribers;
pub mod tenants;

use skyhook_api_types::{Limit, Timestamp};
use skyhook_cli::client::CliError;
use skyhook_domain::ids::{EventId, SubscriberId};
use skyhook_domain::model::Outcome;

// Flag values that go into a query string. The query types only hold valid values, so a bad
// one is refused here, before anything is sent, in the API's words and with the exit code
// (1) of the API's own refusal.

/// `--limit`: 1 to 250.
fn limit(n: u32) -> Result<Limit, CliError> {
    Limit::new(n.into()).ok_or_else(|| {
        CliError::Failed(format!("--limit must be a number from 1 to {}", Limit::MAX))
    })
}

/// `--subscriber`: `sub_…`.
fn subscriber_id(raw: Option<String>) -> Result<Option<SubscriberId>, CliError> {
    raw.map(|s| SubscriberId::parse(&s).map_err(|e| CliError::Failed(format!("--subscriber: {e}"))))
        .transpose()
}

/// `--event`: `evt_…`.
fn event_id(raw: Option<String>) -> Result<Option<EventId>, CliError> {
    raw.map(|s| EventId::parse(&s).map_err(|e| CliError::Failed(format!("--event: {e}"))))
        .transpose()
}

/// `--outcome`: `success` or `failure`.
fn outcome(raw: Option<String>) -> Result<Option<Outcome>, CliError> {
    raw.map(|s| {
        Outcome::parse(&s)
            .ok_or_else(|| CliError::Failed("--outcome must be success or failure".into()))
    })
    .transpose()
}

/// `--since`, `--until`: RFC 3339.
fn time(flag: &str, raw: Option<String>) -> Result<Option<Timestamp>, CliError> {
    raw.map(|s| {
        Timestamp::parse(&s).ok_or_else(|| {
            CliError::Failed(format!(
                "{flag} must be an RFC 3339 time such as 2026-01-02T03:04:05Z"
            ))
        })
    })
    .transpose()
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c().await,
            };
        tokio::select! {
            _ = ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_flags_are_checked_before_anything_is_sent() {
        assert_eq!(limit(250).unwrap().get(), 250);
        for bad in [0, 251, u32::MAX] {
            let err = limit(bad).unwrap_err();
            assert_eq!(err.exit_code(), 1);
            assert_eq!(err.to_string(), "--limit must be a number from 1 to 250");
        }
        assert_eq!(
            subscriber_id(Some("sub_01ABC".into()))
                .unwrap()
                .unwrap()
                .as_str(),
            "sub_01ABC"
        );
        assert!(subscriber_id(Some("evt_01ABC".into())).is_err());
        assert!(subscriber_id(None).unwrap().is_none());
        assert!(event_id(Some("sub_01ABC".into())).is_err());
        assert_eq!(
            outcome(Some("failure".into())).unwrap(),
            Some(Outcome::Failure)
        );
        assert!(outcome(Some("maybe".into())).is_err());
        let since = time("--since", Some("2026-01-02T03:04:05Z".into())).unwrap();
        assert_eq!(since.unwrap().to_string(), "2026-01-02T03:04:05.000Z");
        let err = time("--until", Some("yesterday".into())).unwrap_err();
        assert!(err.to_string().starts_with("--until must be"), "{err}");
    }
}
