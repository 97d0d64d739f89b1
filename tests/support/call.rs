//! How a request to the AWS API emulator names its service and operation, as a proxy in
//! front of the emulator sees it: the recorder of the IAM check ([`crate::recorder`]) and the
//! cost meter of `make bench` (`bench/src/meter.rs`) both name calls this way.

use http::{HeaderMap, HeaderName};

/// The AWS service a call went to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    DynamoDb,
    DynamoDbStreams,
    Sqs,
    SecretsManager,
    EventBridge,
    Other(String),
}

impl Service {
    pub fn label(&self) -> &str {
        match self {
            Service::DynamoDb => "DynamoDB",
            Service::DynamoDbStreams => "DynamoDB Streams",
            Service::Sqs => "SQS",
            Service::SecretsManager => "Secrets Manager",
            Service::EventBridge => "EventBridge",
            Service::Other(name) => name,
        }
    }

    /// From the prefix of `X-Amz-Target` (`DynamoDB_20120810`, `AmazonSQS`, …).
    fn from_target_prefix(prefix: &str) -> Service {
        // `DynamoDBStreams_…` also starts with `DynamoDB`, so it is matched first.
        if prefix.starts_with("DynamoDBStreams") {
            Service::DynamoDbStreams
        } else if prefix.starts_with("DynamoDB") {
            Service::DynamoDb
        } else if prefix == "AmazonSQS" {
            Service::Sqs
        } else if prefix == "secretsmanager" {
            Service::SecretsManager
        } else if prefix == "AWSEvents" {
            Service::EventBridge
        } else {
            Service::Other(prefix.to_string())
        }
    }

    /// From the signing name in the SigV4 credential scope (`…/us-east-1/sqs/aws4_request`).
    fn from_signing_name(name: &str) -> Service {
        match name {
            "dynamodb" => Service::DynamoDb,
            "streams.dynamodb" => Service::DynamoDbStreams,
            "sqs" => Service::Sqs,
            "secretsmanager" => Service::SecretsManager,
            "events" => Service::EventBridge,
            other => Service::Other(other.to_string()),
        }
    }
}

/// How a request named its operation.
pub struct Call {
    pub service: Service,
    pub operation: String,
    pub how: &'static str,
}

/// Headers that belong to one connection, not to the request; the client sets its own.
pub fn is_hop_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "expect"
    )
}

/// A header's value as text, if it is there and is text.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `key=value&…` pairs, percent-decoded.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://meter.invalid/?{text}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

impl Call {
    /// JSON-protocol calls name their operation in `X-Amz-Target`; query-protocol calls in
    /// an `Action=` parameter, with the service only in the signature's credential scope.
    pub fn identify(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Call {
        if let Some((prefix, op)) = header(headers, "x-amz-target").and_then(|t| t.split_once('.'))
        {
            return Call {
                service: Service::from_target_prefix(prefix),
                operation: op.to_string(),
                how: "X-Amz-Target",
            };
        }
        let service = header(headers, "authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split([',', ' ']).next())
            .and_then(|scope| scope.split('/').nth(3))
            .map(Service::from_signing_name)
            .unwrap_or_else(|| Service::Other("unknown".to_string()));
        let form = if header(headers, "content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        {
            form_pairs(&String::from_utf8_lossy(body))
        } else {
            Vec::new()
        };
        let action = query
            .map(form_pairs)
            .unwrap_or_default()
            .into_iter()
            .chain(form)
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v);
        match action {
            Some(operation) => Call {
                service,
                operation,
                how: "Action parameter",
            },
            None => Call {
                service,
                operation: "(unnamed)".to_string(),
                how: "neither X-Amz-Target nor Action",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_named_by_target_or_by_action() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", "DynamoDB_20120810.PutItem".parse().unwrap());
        let call = Call::identify(&headers, None, b"{}");
        assert_eq!(
            (call.service, call.operation.as_str()),
            (Service::DynamoDb, "PutItem")
        );
        headers.insert(
            "x-amz-target",
            "DynamoDBStreams_20120810.GetRecords".parse().unwrap(),
        );
        let call = Call::identify(&headers, None, b"{}");
        assert_eq!(call.service, Service::DynamoDbStreams);
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261129/us-east-1/sqs/aws4_request, \
             SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let call = Call::identify(&headers, None, b"Action=SendMessage&QueueUrl=x");
        assert_eq!(
            (call.service, call.operation.as_str()),
            (Service::Sqs, "SendMessage")
        );
    }
}
