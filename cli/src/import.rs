//! `skyhook subscribers import`: the YAML shape
//! `endpoints: [{id?, url, secret?, events: [...], enabled, description}]`, turned into API
//! requests. Every entry is checked before anything is sent.

use serde::Deserialize;

use skyhook_api_types::subscribers::{CreateSubscriber, UpdateSubscriber};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportFile {
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    #[serde(default)]
    pub id: Option<String>,
    pub url: String,
    #[serde(default)]
    pub secret: Option<String>,
    pub events: Vec<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub description: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

/// What importing one entry takes.
#[derive(Debug, Clone)]
pub enum Plan {
    /// `POST /v1/subscribers`, then (when disabled) a `PATCH` setting `active: false`.
    Create {
        body: CreateSubscriber,
        enabled: bool,
    },
    /// `PATCH /v1/subscribers/{id}`: an entry with an id updates that subscriber.
    Update { id: String, body: UpdateSubscriber },
}

/// Parses the file and plans every entry; an error names the entry (1-based) at fault.
pub fn plan(yaml: &str) -> Result<Vec<(Endpoint, Plan)>, String> {
    let file: ImportFile =
        serde_norway::from_str(yaml).map_err(|e| format!("not an endpoints file: {e}"))?;
    if file.endpoints.is_empty() {
        return Err("the file lists no endpoints".into());
    }
    file.endpoints
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let n = i + 1;
            if e.events.is_empty() {
                return Err(format!("endpoint {n} ({}): events is empty", e.url));
            }
            for ev in &e.events {
                skyhook_domain::event_type::EventTypeFilter::parse(ev)
                    .map_err(|err| format!("endpoint {n} ({}): {err}", e.url))?;
            }
            if let Some(s) = &e.secret {
                skyhook_domain::secret::SigningSecret::parse(s)
                    .map_err(|err| format!("endpoint {n} ({}): {err}", e.url))?;
            }
            let plan = match &e.id {
                Some(id) => {
                    skyhook_domain::ids::SubscriberId::parse(id)
                        .map_err(|err| format!("endpoint {n}: {err}"))?;
                    // An existing subscriber keeps its secret: rotation is its own command.
                    Plan::Update {
                        id: id.clone(),
                        body: UpdateSubscriber {
                            url: Some(e.url.clone()),
                            event_types: Some(e.events.clone()),
                            active: Some(e.enabled),
                            description: e.description.clone().map(Some),
                            ..UpdateSubscriber::default()
                        },
                    }
                }
                None => Plan::Create {
                    body: CreateSubscriber {
                        url: e.url.clone(),
                        event_types: e.events.clone(),
                        description: e.description.clone(),
                        secret: e.secret.clone(),
                        ..CreateSubscriber::default()
                    },
                    enabled: e.enabled,
                },
            };
            Ok((e, plan))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
endpoints:
  - url: https://example.com/orders
    events: ["order.*"]
    description: Orders
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  - id: sub_01ABC
    url: https://example.com/all
    events: ["*"]
    enabled: false
"#;

    #[test]
    fn entries_without_an_id_are_created_and_with_one_updated() {
        let plans = plan(FILE).unwrap();
        assert_eq!(plans.len(), 2);
        match &plans[0].1 {
            Plan::Create { body, enabled } => {
                assert!(*enabled);
                assert_eq!(body.url, "https://example.com/orders");
                assert_eq!(body.event_types, ["order.*"]);
                assert_eq!(
                    body.secret.as_deref(),
                    Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                );
                assert_eq!(body.description.as_deref(), Some("Orders"));
            }
            other => panic!("{other:?}"),
        }
        match &plans[1].1 {
            Plan::Update { id, body } => {
                assert_eq!(id, "sub_01ABC");
                assert_eq!(body.active, Some(false));
                assert_eq!(body.fields(), ["url", "event_types", "active"]);
                // The same JSON the API reads: no description given, none sent (or cleared).
                assert_eq!(
                    serde_json::to_value(body).unwrap(),
                    serde_json::json!({
                        "url": "https://example.com/all",
                        "event_types": ["*"],
                        "active": false,
                    })
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_entries_are_named_before_anything_is_sent() {
        let bad_filter = "endpoints:\n  - url: https://x.example\n    events: ['order.*.x']\n";
        assert!(plan(bad_filter).unwrap_err().starts_with("endpoint 1"));
        let bad_secret = "endpoints:\n  - url: https://x.example\n    events: ['*']\n  - url: https://y.example\n    events: ['*']\n    secret: nope\n";
        assert!(plan(bad_secret).unwrap_err().starts_with("endpoint 2"));
        assert!(plan("endpoints: []").is_err());
        assert!(
            plan("endpoints:\n  - url: https://x.example\n    events: ['*']\n    colour: red\n")
                .is_err()
        );
        assert!(plan("not: [valid").is_err());
    }
}
