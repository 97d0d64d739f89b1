//! `skyhook listen` (a local receiver that verifies what it gets, optionally subscribed for
//! as long as it runs) and `skyhook verify` (the same check on a saved request).

use std::net::SocketAddr;

use reqwest::Method;

use skyhook_api_types::subscribers::{CreateSubscriber, SubscriberView};
use skyhook_cli::client::CliError;
use skyhook_cli::listen::{ListenOptions, Listener, Verdict, describe, read_saved, verify_request};
use skyhook_domain::secret::SigningSecret;

use super::interrupted;
use crate::{ListenArgs, VerifyArgs};

fn parse_secrets(raw: &[String]) -> Result<Vec<SigningSecret>, CliError> {
    raw.iter()
        .map(|s| SigningSecret::parse(s).map_err(|e| CliError::Usage(format!("--secret: {e}"))))
        .collect()
}

pub async fn listen(args: ListenArgs) -> Result<(), CliError> {
    let secrets = parse_secrets(&args.secrets)?;
    if !args.path.starts_with('/') {
        return Err(CliError::Usage("--path must start with /".into()));
    }
    let shaped = args.transform.transform.is_some()
        || args.transform.transform_file.is_some()
        || args.filter.filter.is_some()
        || args.filter.filter_file.is_some();
    if shaped && args.subscribe.is_empty() {
        return Err(CliError::Usage(
            "--transform and --filter shape the subscription: give --subscribe too".into(),
        ));
    }
    let client = if args.subscribe.is_empty() {
        None
    } else {
        Some(args.api.client()?)
    };
    let listener = Listener::start(ListenOptions {
        addr: SocketAddr::new(args.host, args.port),
        secrets,
        status: args.status,
        save_dir: args.save,
        exit_after: args.exit_after,
    })
    .await
    .map_err(|e| CliError::Usage(format!("cannot listen on {}:{}: {e}", args.host, args.port)))?;
    let url = format!("http://{}{}", listener.addr, args.path);
    let mut subscription = None;
    if let Some(client) = &client {
        let body = CreateSubscriber {
            url: url.clone(),
            event_types: args.subscribe.clone(),
            description: Some("skyhook listen".into()),
            transform: super::subscribers::read_transform(args.transform.clone())?,
            filter: super::subscribers::read_filter(args.filter.clone())?,
            ..CreateSubscriber::default()
        };
        let created = client
            .send::<_, SubscriberView>(Method::POST, "/v1/subscribers", Some(&body), &[])
            .await?
            .body;
        let secret = created
            .secret
            .as_deref()
            .and_then(|s| SigningSecret::parse(s).ok())
            .ok_or_else(|| CliError::Failed("the API returned no usable secret".into()))?;
        listener.add_secret(secret).await;
        println!(
            "Subscribed {} to {}; deliveries are verified with its secret.",
            created.id,
            args.subscribe.join(", ")
        );
        subscription = Some(created.id);
    }
    println!("Listening on {url} (Ctrl-C to stop)");
    listener.wait(interrupted()).await;
    if let (Some(client), Some(id)) = (&client, subscription) {
        match client.delete(&format!("/v1/subscribers/{id}")).await {
            Ok(()) => println!("Unsubscribed {id}."),
            Err(e) => eprintln!("could not delete subscriber {id}: {e}"),
        }
    }
    Ok(())
}

/// Exits 0 when a secret verifies the saved request, 1 when none does.
pub fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let secrets = parse_secrets(&args.secrets)?;
    let req = read_saved(&args.file).map_err(CliError::Usage)?;
    let verdict = verify_request(
        &req,
        &secrets,
        chrono::Utc::now().timestamp(),
        (!args.ignore_age).then_some(skyhook_domain::signing::DEFAULT_TOLERANCE_SECS),
    );
    print!("{}", describe(&req, &verdict));
    match verdict {
        Verdict::Verified(_) => Ok(()),
        Verdict::Invalid(e) => Err(CliError::Failed(format!("signature does not verify: {e}"))),
        Verdict::Unchecked => Err(CliError::Usage("no secret given".into())),
    }
}
