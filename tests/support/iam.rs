//! The IAM check: every AWS action a function performed in the suite (recorded by
//! [`crate::recorder`]) must be granted to its role in `infra/template.yaml` on that
//! resource, and every grant must be one the code uses, or one the suite cannot exercise
//! for a stated reason ([`EXEMPT`]). moto does not enforce IAM; this is what does.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::recorder::Use;

/// The template's functions by logical id, with the binary names the recorder uses.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("IngestHttpFunction", "ingest-http"),
    // The same binary and role, serving the inbound route apart.
    ("IngestInboundFunction", "ingest-http"),
    ("IngestEventsFunction", "ingest-events"),
    ("ApiFunction", "api"),
    ("DeliveryFunction", "delivery"),
    ("StatsFunction", "stats"),
];

/// A grant the suite cannot exercise, and why it is there.
pub struct Exempt {
    /// A function's binary name, or `*` for every function.
    pub function: &'static str,
    /// An IAM action, or a service prefix ending in `:*`.
    pub action: &'static str,
    /// A resource as [`grants`] names it, or `*`.
    pub resource: &'static str,
    pub why: &'static str,
}

pub const EXEMPT: &[Exempt] = &[
    Exempt {
        function: "*",
        action: "logs:*",
        resource: "*",
        why: "the Lambda runtime writes the function's logs with its role; Skyhook's code never calls CloudWatch Logs",
    },
    Exempt {
        function: "stats",
        action: "dynamodb:ListStreams",
        resource: "Table/stream",
        why: "Lambda's DynamoDB event source mapping needs it (as in AWSLambdaDynamoDBExecutionRole); the suite's stream poller is given the stream's ARN",
    },
    Exempt {
        function: "delivery",
        action: "sqs:GetQueueAttributes",
        resource: "DeliveryQueue",
        why: "Lambda's SQS event source mapping needs it (as in AWSLambdaSQSQueueExecutionRole); the suite's poller does not ask",
    },
    Exempt {
        function: "ingest-events",
        action: "sqs:SendMessage",
        resource: "IngestEventsFailureQueue",
        why: "Lambda sends a failed asynchronous EventBridge invocation there with the function's role; the code never does",
    },
];

impl Exempt {
    fn covers(&self, g: &Use) -> bool {
        let function = self.function == "*" || self.function == g.function;
        let action = match self.action.strip_suffix('*') {
            Some(prefix) => g.action.starts_with(prefix),
            None => self.action == g.action,
        };
        let resource = self.resource == "*" || self.resource == g.resource;
        function && action && resource
    }
}

/// What the template grants each function: (function, action, resource) for every
/// allowed action and resource of every statement of its role's policies.
pub fn grants(doc: &Value) -> Result<BTreeSet<Use>, String> {
    let mut out = BTreeSet::new();
    for (logical_id, function) in FUNCTIONS {
        let f = &doc["Resources"][*logical_id];
        let role_id = f["Properties"]["Role"]["Fn::GetAtt"][0]
            .as_str()
            .ok_or_else(|| format!("{logical_id} has no Role: !GetAtt <role>.Arn"))?;
        let policies = doc["Resources"][role_id]["Properties"]["Policies"]
            .as_array()
            .ok_or_else(|| format!("{role_id} has no inline Policies"))?;
        for policy in policies {
            let statements = policy["PolicyDocument"]["Statement"]
                .as_array()
                .ok_or_else(|| format!("{role_id}: a policy without statements"))?;
            for st in statements {
                if st["Effect"] != "Allow" {
                    continue;
                }
                // The partitions of the table the statement reaches: those its
                // `dynamodb:LeadingKeys` condition allows, or all of them.
                let leading = &st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                let patterns: Vec<String> = if leading.is_null() {
                    vec!["*".to_string()]
                } else {
                    list(leading)
                        .iter()
                        .map(|p| p.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            format!("{role_id}: a LeadingKeys pattern that is not a string")
                        })?
                };
                for action in list(&st["Action"]) {
                    let action = action
                        .as_str()
                        .ok_or_else(|| format!("{role_id}: an action that is not a string"))?;
                    for resource in list(&st["Resource"]) {
                        let resource = resource_name(&resource);
                        if action.starts_with("dynamodb:") && resource == "Table" {
                            for pattern in &patterns {
                                out.insert(Use {
                                    function: function.to_string(),
                                    action: format!("{action}{}", crate::recorder::KEYS_OF),
                                    resource: pattern.clone(),
                                });
                            }
                        }
                        out.insert(Use {
                            function: function.to_string(),
                            action: action.to_string(),
                            resource,
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// A statement's resource named as the recorder names what a request touched.
pub fn resource_name(v: &Value) -> String {
    if let Some(att) = v.get("Fn::GetAtt") {
        let (res, attr) = (
            att[0].as_str().unwrap_or_default(),
            att[1].as_str().unwrap_or_default(),
        );
        return match attr {
            "Arn" => res.to_string(),
            "StreamArn" => format!("{res}/stream"),
            other => format!("{res}.{other}"),
        };
    }
    if let Some(r) = v.get("Ref").and_then(Value::as_str) {
        // The stack's bus, given by name or ARN (see `Fn::If` below).
        if r == "EventBusName" {
            return "EventBus".into();
        }
        return r.to_string();
    }
    // A resource named one way or another by a condition: both ways must name the same.
    if let Some(branches) = v.get("Fn::If").and_then(Value::as_array)
        && branches.len() == 3
    {
        let (yes, no) = (resource_name(&branches[1]), resource_name(&branches[2]));
        return if yes == no {
            yes
        } else {
            format!("either {yes} or {no}")
        };
    }
    if let Some(sub) = v.get("Fn::Sub").and_then(Value::as_str) {
        if let Some(rest) = sub.strip_prefix("${")
            && let Some((inner, tail)) = rest.split_once('}')
            && let Some(res) = inner.strip_suffix(".Arn")
        {
            return format!("{res}{tail}");
        }
        if sub.contains(":secretsmanager:") && sub.ends_with("/subscribers/*") {
            return "SubscriberSecret".into();
        }
        if sub.contains(":secretsmanager:") && sub.ends_with("/sources/*") {
            return "SourceSecret".into();
        }
        // Only the stack's own bus is the bus; a wildcard is more than the code needs.
        if sub.contains(":events:") && sub.ends_with(":event-bus/${EventBusName}") {
            return "EventBus".into();
        }
        return sub.to_string();
    }
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Whether `grant` allows `used`: the same function and action, on the same resource or on
/// a wildcard that covers it (`Table/index/*`).
fn allows(grant: &Use, used: &Use) -> bool {
    grant.function == used.function
        && grant.action == used.action
        && (grant.resource == used.resource
            || grant
                .resource
                .strip_suffix('*')
                .is_some_and(|prefix| used.resource.starts_with(prefix)))
}

/// What the check found.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    /// Done by the code, not granted: AccessDenied in AWS.
    pub missing: Vec<Use>,
    /// Granted, never done, and not exempt: more than the function needs.
    pub unused: Vec<Use>,
    /// Granted for a reason the suite cannot exercise.
    pub exempt: Vec<(Use, &'static str)>,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unused.is_empty()
    }
}

pub fn check(used: &BTreeSet<Use>, granted: &BTreeSet<Use>) -> Findings {
    let mut findings = Findings::default();
    for u in used {
        if u.resource.starts_with("unknown:") || !granted.iter().any(|g| allows(g, u)) {
            findings.missing.push(u.clone());
        }
    }
    for g in granted {
        if used.iter().any(|u| allows(g, u)) {
            continue;
        }
        match EXEMPT.iter().find(|e| e.covers(g)) {
            Some(e) => findings.exempt.push((g.clone(), e.why)),
            None => findings.unused.push(g.clone()),
        }
    }
    findings
}

/// The table `make test` prints: per function, each action and resource, and whether the
/// code used it, the template grants it, or both.
pub fn report(used: &BTreeSet<Use>, granted: &BTreeSet<Use>, findings: &Findings) -> String {
    let mut rows: BTreeSet<(String, String, String)> = BTreeSet::new();
    for u in used.iter().chain(granted.iter()) {
        rows.insert((u.function.clone(), u.action.clone(), u.resource.clone()));
    }
    let mut out = String::from(
        "IAM check: what each function did in the suite against what its role grants\n\n",
    );
    out.push_str(&format!(
        "{:<14} {:<36} {:<28} {}\n",
        "function", "action", "resource", "verdict"
    ));
    for (function, action, resource) in rows {
        let u = Use {
            function: function.clone(),
            action: action.clone(),
            resource: resource.clone(),
        };
        let verdict = if findings.missing.contains(&u) {
            "MISSING: used, not granted".to_string()
        } else if findings.unused.contains(&u) {
            "UNUSED: granted, never used".to_string()
        } else if let Some((_, why)) = findings.exempt.iter().find(|(g, _)| *g == u) {
            format!("granted, exempt: {why}")
        } else if used.contains(&u) {
            "used and granted".to_string()
        } else {
            "granted, covers what is used".to_string()
        };
        out.push_str(&format!(
            "{function:<14} {action:<36} {resource:<28} {verdict}\n"
        ));
    }
    out.push_str(&format!(
        "\n{} used, {} granted; {} missing, {} unused, {} exempt\n",
        used.len(),
        granted.len(),
        findings.missing.len(),
        findings.unused.len(),
        findings.exempt.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn u(function: &str, action: &str, resource: &str) -> Use {
        Use {
            function: function.into(),
            action: action.into(),
            resource: resource.into(),
        }
    }

    fn doc(statements: Value) -> Value {
        let mut resources = serde_json::Map::new();
        for (id, _) in FUNCTIONS {
            resources.insert(
                id.to_string(),
                json!({"Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}}),
            );
        }
        resources.insert(
            "Role".into(),
            json!({"Properties": {"Policies": [{"PolicyDocument": {"Statement": statements}}]}}),
        );
        json!({ "Resources": resources })
    }

    #[test]
    fn statements_become_grants_with_resources_named_as_recorded() {
        let d = doc(json!([
            {"Effect": "Allow", "Action": ["dynamodb:Query", "dynamodb:GetItem"], "Resource": {"Fn::GetAtt": ["Table", "Arn"]}},
            {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": {"Fn::Sub": "${Table.Arn}/index/gsi1"}},
            {"Effect": "Allow", "Action": "dynamodb:GetRecords", "Resource": {"Fn::GetAtt": ["Table", "StreamArn"]}},
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:skyhook/${AWS::StackName}/subscribers/*"}},
            {"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Fn::If": ["BusIsArn", {"Ref": "EventBusName"}, {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}]}},
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "AdminKeySecret"}},
            {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"},
        ]));
        let g = grants(&d).unwrap();
        for want in [
            u("api", "dynamodb:Query", "Table"),
            u("api", "dynamodb:Query", "Table/index/gsi1"),
            u("api", "dynamodb:GetRecords", "Table/stream"),
            u("api", "secretsmanager:GetSecretValue", "SubscriberSecret"),
            u("api", "secretsmanager:GetSecretValue", "AdminKeySecret"),
            u("api", "events:PutEvents", "EventBus"),
        ] {
            assert!(g.contains(&want), "{want:?} in {g:?}");
        }
        assert!(!g.iter().any(|x| x.action == "dynamodb:DeleteItem"));
        // A grant on every bus is not a grant on the stack's bus.
        let wide = grants(&doc(json!([
            {"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/*"}},
        ])))
        .unwrap();
        assert!(
            !wide.contains(&u("api", "events:PutEvents", "EventBus")),
            "{wide:?}"
        );
    }

    #[test]
    fn a_leading_keys_condition_grants_only_its_partitions_for_its_actions() {
        let narrow = grants(&doc(json!([
            {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
             "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["T#*", "TENANTS"]}}},
            {"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
             "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["E#*"]}}},
        ])))
        .unwrap();
        let keys = |action: &str| format!("{action}{}", crate::recorder::KEYS_OF);
        let get = keys("dynamodb:GetItem");
        let put = keys("dynamodb:PutItem");
        assert!(narrow.contains(&u("api", &get, "T#*")));
        assert!(narrow.contains(&u("api", &get, "TENANTS")));
        assert!(narrow.contains(&u("api", &put, "E#*")));
        assert!(!narrow.contains(&u("api", &put, "T#*")));
        let findings = check(
            &BTreeSet::from([
                u("api", "dynamodb:GetItem", "Table"),
                u("api", "dynamodb:PutItem", "Table"),
                u("api", &get, "T#"),
                u("api", &get, "S#"),
                u("api", &put, "E#"),
                u("api", &put, "T#"),
            ]),
            &narrow
                .iter()
                .filter(|g| g.function == "api")
                .cloned()
                .collect(),
        );
        assert_eq!(
            findings.missing,
            vec![u("api", &get, "S#"), u("api", &put, "T#")],
            "the ledger is out of reach, and so is writing what may only be read"
        );
        assert_eq!(findings.unused, vec![u("api", &get, "TENANTS")]);
        let wide = grants(&doc(json!([
            {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": {"Fn::GetAtt": ["Table", "Arn"]}},
        ])))
        .unwrap();
        assert!(wide.contains(&u("api", &get, "*")));
    }

    #[test]
    fn a_use_without_a_grant_is_missing_and_a_grant_without_a_use_is_unused_unless_exempt() {
        let granted = BTreeSet::from([
            u("api", "dynamodb:Query", "Table/index/*"),
            u("api", "dynamodb:PutItem", "Table"),
            u("api", "logs:PutLogEvents", "ApiLogs"),
            u("stats", "dynamodb:ListStreams", "Table/stream"),
        ]);
        let used = BTreeSet::from([
            u("api", "dynamodb:Query", "Table/index/gsi1"),
            u("ingest-http", "dynamodb:UpdateItem", "Table"),
            u("api", "sqs:SendMessage", "unknown:elsewhere"),
        ]);
        let f = check(&used, &granted);
        assert_eq!(
            f.missing,
            vec![
                u("api", "sqs:SendMessage", "unknown:elsewhere"),
                u("ingest-http", "dynamodb:UpdateItem", "Table"),
            ]
        );
        assert_eq!(f.unused, vec![u("api", "dynamodb:PutItem", "Table")]);
        assert_eq!(f.exempt.len(), 2);
        assert!(!f.is_clean());
        let text = report(&used, &granted, &f);
        assert!(text.contains("MISSING"), "{text}");
        assert!(text.contains("UNUSED"), "{text}");
    }
}
