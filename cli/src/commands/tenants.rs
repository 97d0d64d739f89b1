//! `skyhook tenants …`: tenants and their publish limits, for the bootstrap key.

use reqwest::Method;

use skyhook_api_types::query::PageQuery;
use skyhook_api_types::tenants::{LimitsView, PutTenant, TenantView};
use skyhook_cli::client::CliError;

use super::output::{list_pages, print_rows};
use crate::TenantCommand;

fn line(t: &TenantView) -> String {
    format!(
        "{:<24}  {:>7}/s  burst {:<8}  {:<8}  {}",
        t.id,
        t.limits.events_per_second,
        t.limits.burst,
        if t.custom_limits { "own" } else { "defaults" },
        t.created_at
    )
}

pub async fn run(json_mode: bool, cmd: TenantCommand) -> Result<(), CliError> {
    match cmd {
        TenantCommand::List { api } => {
            let client = api.client()?;
            let rows =
                list_pages::<TenantView, _>(&client, "/v1/tenants", PageQuery::default(), true)
                    .await?;
            print_rows(json_mode, &rows, line);
            Ok(())
        }
        TenantCommand::Get { api, tenant } => {
            let out = api
                .client()?
                .get::<TenantView>(&format!("/v1/tenants/{}", path_segment(&tenant)?), &())
                .await?;
            if json_mode {
                println!("{}", out.json());
            } else {
                println!("{}", line(&out.body));
            }
            Ok(())
        }
        TenantCommand::Set {
            api,
            tenant,
            events_per_second,
            burst,
            defaults,
        } => {
            let limits = match (defaults, events_per_second, burst) {
                (true, _, _) => None,
                (false, Some(events_per_second), Some(burst)) => Some(LimitsView {
                    events_per_second,
                    burst,
                }),
                _ => {
                    return Err(CliError::Usage(
                        "give --events-per-second and --burst, or --defaults".into(),
                    ));
                }
            };
            let out = api
                .client()?
                .send::<_, TenantView>(
                    Method::PUT,
                    &format!("/v1/tenants/{}", path_segment(&tenant)?),
                    Some(&PutTenant { limits }),
                    &[],
                )
                .await?;
            if json_mode {
                println!("{}", out.json());
            } else {
                println!("{}", line(&out.body));
            }
            Ok(())
        }
    }
}

/// A tenant id as one path segment: tenant ids are lower-case letters, digits, `-` and `_`,
/// so anything else is refused here rather than sent as another path.
fn path_segment(tenant: &str) -> Result<&str, CliError> {
    skyhook_domain::ids::TenantId::parse(tenant)
        .map(|_| tenant)
        .map_err(|e| CliError::Failed(format!("invalid tenant {tenant:?}: {e}")))
}
