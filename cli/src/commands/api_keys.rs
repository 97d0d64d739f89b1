//! `skyhook api-keys …` and `skyhook audit`: the tenant's keys and its management changes.

use reqwest::Method;

use skyhook_api_types::ListResponse;
use skyhook_api_types::keys::{AuditView, CreateKey, KeyView, WhoAmI};
use skyhook_api_types::query::PageQuery;
use skyhook_cli::client::CliError;

use super::limit;
use crate::{ApiArgs, ApiKeyCommand};

pub async fn run(json_mode: bool, cmd: ApiKeyCommand) -> Result<(), CliError> {
    match cmd {
        ApiKeyCommand::Create {
            api,
            role,
            tenant,
            description,
        } => {
            let body = CreateKey {
                tenant,
                role,
                description,
            };
            let out = api
                .client()?
                .send::<_, KeyView>(Method::POST, "/v1/api-keys", Some(&body), &[])
                .await?;
            if json_mode {
                println!("{}", out.json());
            } else {
                let k = &out.body;
                println!("id      {}", k.id);
                println!("tenant  {}", k.tenant);
                println!("role    {}", k.role.as_str());
                println!(
                    "key     {}   (shown only now)",
                    k.key.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        ApiKeyCommand::List { api } => {
            // The first page, as the API's default size has it.
            let out = api
                .client()?
                .get::<ListResponse<KeyView>>("/v1/api-keys", &PageQuery::default())
                .await?;
            if json_mode {
                println!("{}", out.json());
            } else {
                for k in &out.body.data {
                    println!(
                        "{}  {:<10}  {:<9}  {}  {}",
                        k.id,
                        k.tenant,
                        k.role.as_str(),
                        k.created_at,
                        k.description.as_deref().unwrap_or(""),
                    );
                }
            }
            Ok(())
        }
        ApiKeyCommand::Delete { api, id } => {
            api.client()?.delete(&format!("/v1/api-keys/{id}")).await?;
            if !json_mode {
                println!("deleted {id}");
            }
            Ok(())
        }
    }
}

/// The newest `limit` management changes: one page.
pub async fn audit(json_mode: bool, api: &ApiArgs, n: u32) -> Result<(), CliError> {
    let client = api.client()?;
    let query = PageQuery {
        limit: Some(limit(n)?),
        cursor: None,
    };
    let page = client
        .get::<ListResponse<AuditView>>("/v1/audit", &query)
        .await?;
    if json_mode {
        println!("{}", page.json());
    } else {
        for r in &page.body.data {
            println!(
                "{}  {:<12}  {:<22}  {}",
                r.at, r.actor, r.action, r.resource
            );
        }
    }
    Ok(())
}

/// `GET /v1/whoami`.
pub async fn whoami(json_mode: bool, api: &ApiArgs) -> Result<(), CliError> {
    let out = api.client()?.get::<WhoAmI>("/v1/whoami", &()).await?;
    if json_mode {
        println!("{}", out.json());
    } else {
        let w = &out.body;
        println!(
            "tenant {}  role {}  key {}",
            w.tenant,
            w.role.as_str(),
            w.key_id.as_deref().unwrap_or("bootstrap")
        );
    }
    Ok(())
}
