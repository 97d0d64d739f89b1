//! `skyhook api-keys …` and `skyhook audit`: the tenant's keys and its management changes.

use reqwest::Method;
use serde_json::json;

use skyhook_cli::client::CliError;

use super::output::field;
use crate::{ApiArgs, ApiKeyCommand};

pub async fn run(json_mode: bool, cmd: ApiKeyCommand) -> Result<(), CliError> {
    match cmd {
        ApiKeyCommand::Create {
            api,
            role,
            tenant,
            description,
        } => {
            let mut body = json!({"role": role});
            if let Some(t) = tenant {
                body["tenant"] = json!(t);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let out = api
                .client()?
                .call(Method::POST, "/v1/api-keys", Some(&body), &[])
                .await?;
            if json_mode {
                println!("{out}");
            } else {
                println!("id      {}", field(&out, "id"));
                println!("tenant  {}", field(&out, "tenant"));
                println!("role    {}", field(&out, "role"));
                println!("key     {}   (shown only now)", field(&out, "key"));
            }
            Ok(())
        }
        ApiKeyCommand::List { api } => {
            let out = api
                .client()?
                .call(Method::GET, "/v1/api-keys", None, &[])
                .await?;
            if json_mode {
                println!("{out}");
            } else {
                for k in out["data"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "{}  {:<10}  {:<9}  {}  {}",
                        field(&k, "id"),
                        field(&k, "tenant"),
                        field(&k, "role"),
                        field(&k, "created_at"),
                        field(&k, "description"),
                    );
                }
            }
            Ok(())
        }
        ApiKeyCommand::Delete { api, id } => {
            api.client()?
                .call(Method::DELETE, &format!("/v1/api-keys/{id}"), None, &[])
                .await?;
            if !json_mode {
                println!("deleted {id}");
            }
            Ok(())
        }
    }
}

/// The newest `limit` management changes: one page.
pub async fn audit(json_mode: bool, api: &ApiArgs, limit: u32) -> Result<(), CliError> {
    let page = api
        .client()?
        .call(Method::GET, &format!("/v1/audit?limit={limit}"), None, &[])
        .await?;
    if json_mode {
        println!("{page}");
    } else {
        for r in page["data"].as_array().cloned().unwrap_or_default() {
            println!(
                "{}  {:<12}  {:<22}  {}",
                r["at"].as_str().unwrap_or(""),
                r["actor"].as_str().unwrap_or(""),
                r["action"].as_str().unwrap_or(""),
                r["resource"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
