//! `skyhook api-keys …` and `skyhook audit`: the tenant's keys and its management changes.

use clap::{Args, Subcommand};
use reqwest::Method;

use skyhook_api_types::ListResponse;
use skyhook_api_types::keys::{AuditView, CreateKey, KeyView, WhoAmI};
use skyhook_api_types::query::PageQuery;
use skyhook_cli::client::CliError;

use super::args::ApiArgs;
use super::limit;

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; prints it (shown only this once).
    Create {
        #[command(flatten)]
        api: ApiArgs,
        /// reader, publisher or admin.
        #[arg(long)]
        role: String,
        /// Tenant of the key (only the bootstrap key may name another tenant).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// The tenant's keys (never the keys themselves).
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a key at once.
    Delete {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
}

/// The flags of `skyhook audit`.
#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

/// Hands each subcommand to its function.
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
            create(json_mode, &api, &body).await
        }
        ApiKeyCommand::List { api } => list(json_mode, &api).await,
        ApiKeyCommand::Delete { api, id } => {
            api.client()?.delete(&format!("/v1/api-keys/{id}")).await?;
            if !json_mode {
                println!("deleted {id}");
            }
            Ok(())
        }
    }
}

/// `api-keys create`: prints the key, the only time it is shown.
async fn create(json_mode: bool, api: &ApiArgs, body: &CreateKey) -> Result<(), CliError> {
    let out = api
        .client()?
        .send::<_, KeyView>(Method::POST, "/v1/api-keys", Some(body), &[])
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

/// `api-keys list`: the first page, as the API's default size has it.
async fn list(json_mode: bool, api: &ApiArgs) -> Result<(), CliError> {
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

/// The newest `limit` management changes: one page.
pub async fn audit(json_mode: bool, args: AuditArgs) -> Result<(), CliError> {
    let client = args.api.client()?;
    let query = PageQuery {
        limit: Some(limit(args.limit)?),
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
