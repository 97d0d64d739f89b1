//! The world the sample Lambda events in `events/` expect: the admin key the API Gateway
//! request carries, the two subscribers the SQS batch is addressed to, and the inbound
//! source the GitHub-style request posts to. The integration
//! tests and the smoke check (`skyhook-smoke-fixture`) both build it with these functions,
//! so the files, the tests and the smoke check cannot disagree.

use std::path::PathBuf;

use aws_config::SdkConfig;
use chrono::Utc;

use skyhook_aws::{Adapters, Provisioned, Resources, Retention};
use skyhook_domain::event_type::EventTypeFilter;
use skyhook_domain::ids::{SourceId, SubscriberId, TenantId};
use skyhook_domain::inbound::{EventTypeRule, Scheme, Source, SourceSecret};
use skyhook_domain::model::Subscriber;
use skyhook_domain::secret::SigningSecret;
use skyhook_domain::signing::SignatureScheme;
use skyhook_domain::url::{SubscriberUrl, UrlPolicy};

/// The bearer key in `events/apigw-post-event.json`. It opens nothing but local emulators:
/// a deployed stack generates its own key in Secrets Manager.
pub const SAMPLE_ADMIN_KEY: &str = "sk_local_sample_admin_0123456789abcdef";

/// Receives the first record of `events/sqs-batch.json`; its endpoint answers 200.
pub const SAMPLE_OK_SUBSCRIBER: &str = "sub_sampleok";
/// Receives the second record; its endpoint answers 500, so the record is retried and is
/// the one entry of `batchItemFailures`.
pub const SAMPLE_FAILING_SUBSCRIBER: &str = "sub_samplefailing";
/// `messageId` of that second record.
pub const SAMPLE_FAILING_MESSAGE_ID: &str = "9c2d1c7e-5b1a-4f0e-8a43-2f7b0d4f0002";
/// `messageId` of the third record, whose message format version no build knows: it goes
/// straight to the dead-letter queue.
pub const SAMPLE_DEAD_MESSAGE_ID: &str = "9c2d1c7e-5b1a-4f0e-8a43-2f7b0d4f0003";

/// The GitHub-style inbound source `events/apigw-inbound-github.json` posts to: event types
/// from `X-GitHub-Event`, prefixed `github.`.
pub const SAMPLE_GITHUB_SOURCE: &str = "src_samplegithub";
/// Its secret: the one of GitHub's published test vector.
pub const SAMPLE_GITHUB_SECRET: &str = "It's a Secret to Everybody";

/// Path of a file in the repository's `events/` directory.
pub fn event_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name)
}

/// Reads a file of `events/`.
pub fn read_event_file(name: &str) -> String {
    let path = event_file(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Creates the two sample subscribers of tenant `default`, subscribed to every event type,
/// with their signing secrets. Local URLs are allowed: the endpoints are on 127.0.0.1.
pub async fn seed_sample_subscribers(
    sdk: &SdkConfig,
    resources: &Provisioned,
    secret_prefix: &str,
    ok_url: &str,
    failing_url: &str,
) {
    // The same wiring as every function; only the table and the secret prefix matter here.
    let adapters = Adapters::from_sdk(
        sdk,
        &Resources {
            table: resources.table.clone(),
            stats_table: None,
            queue_url: String::new(),
            dlq_url: None,
            secret_prefix: secret_prefix.to_string(),
            source_secret_prefix: skyhook_domain::config::DEFAULT_SOURCE_SECRET_PREFIX.to_string(),
            keyring_secret: resources.keyring_secret.clone(),
            event_bus: None,
        },
        &Retention::default(),
    );
    let (subscribers, secrets) = (adapters.subscribers, adapters.secrets);
    let tenant = TenantId::default_tenant();
    for (id, url) in [
        (SAMPLE_OK_SUBSCRIBER, ok_url),
        (SAMPLE_FAILING_SUBSCRIBER, failing_url),
    ] {
        let now = Utc::now();
        let subscriber = Subscriber {
            id: SubscriberId::parse(id).expect("sample subscriber id"),
            tenant: tenant.clone(),
            url: SubscriberUrl::parse(url, UrlPolicy::LOCAL).expect("sample subscriber URL"),
            event_types: vec![EventTypeFilter::parse("*").expect("filter")],
            active: true,
            description: Some("sample subscriber of events/".to_string()),
            headers: Default::default(),
            signature_scheme: SignatureScheme::Standard,
            created_at: now,
            updated_at: now,
            secret_version: 0,
            max_concurrency: skyhook_domain::model::DEFAULT_MAX_CONCURRENCY,
            rate_limit: None,
            disabled_reason: None,
            transform: None,
            filter: None,
        };
        secrets
            .create(
                &tenant,
                &subscriber.id,
                &SigningSecret::generate(),
                &Default::default(),
            )
            .await
            .expect("creating a sample subscriber's secret");
        subscribers
            .create(&subscriber)
            .await
            .expect("creating a sample subscriber");
    }
}

/// Creates the sample GitHub-style source of tenant `default`, with its secret under
/// `source_secret_prefix`.
pub async fn seed_sample_source(
    sdk: &SdkConfig,
    resources: &Provisioned,
    source_secret_prefix: &str,
) {
    let adapters = Adapters::from_sdk(
        sdk,
        &Resources {
            table: resources.table.clone(),
            stats_table: None,
            queue_url: String::new(),
            dlq_url: None,
            secret_prefix: skyhook_domain::config::DEFAULT_SECRET_PREFIX.to_string(),
            source_secret_prefix: source_secret_prefix.to_string(),
            keyring_secret: resources.keyring_secret.clone(),
            event_bus: None,
        },
        &Retention::default(),
    );
    let now = Utc::now();
    let source = Source {
        id: SourceId::parse(SAMPLE_GITHUB_SOURCE).expect("sample source id"),
        tenant: TenantId::default_tenant(),
        name: "sample GitHub source of events/".into(),
        scheme: Scheme::Github,
        hmac: None,
        event_type: EventTypeRule {
            header: Some("X-GitHub-Event".into()),
            prefix: Some("github.".into()),
            ..EventTypeRule::default()
        },
        created_at: now,
        updated_at: now,
        secret_version: 0,
    };
    adapters
        .source_secrets
        .create(
            &source.tenant,
            &source.id,
            &SourceSecret::parse(Scheme::Github, SAMPLE_GITHUB_SECRET).expect("sample secret"),
        )
        .await
        .expect("creating the sample source's secret");
    adapters
        .sources
        .create(&source)
        .await
        .expect("creating the sample source");
}
