//! `skyhook tenants …`: tenants and their publish limits, for the bootstrap key.

use clap::Subcommand;
use reqwest::Method;

use skyhook_api_types::query::PageQuery;
use skyhook_api_types::tenants::{LimitsView, PutTenant, TenantView};
use skyhook_cli::client::CliError;

use super::args::ApiArgs;
use super::output::{list_pages, print_rows};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Every tenant, with the limits it publishes under.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// One tenant.
    Get {
        #[command(flatten)]
        api: ApiArgs,
        tenant: String,
    },
    /// Set a tenant's publish limits (recording it if new), or put it back on the defaults.
    Set {
        #[command(flatten)]
        api: ApiArgs,
        tenant: String,
        /// Publishes a second on average (1 to 100,000).
        #[arg(
            long = "events-per-second",
            required_unless_present = "defaults",
            requires = "burst"
        )]
        events_per_second: Option<u32>,
        /// Publishes at once after a quiet spell (1 to 1,000,000).
        #[arg(long, requires = "events_per_second")]
        burst: Option<u32>,
        /// Back to the stack's defaults (SKYHOOK_TENANT_EVENTS_PER_SECOND, SKYHOOK_TENANT_BURST).
        #[arg(long, conflicts_with_all = ["events_per_second", "burst"])]
        defaults: bool,
    },
}

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
            set(json_mode, &api, &tenant, limits).await
        }
    }
}

/// `tenants set`: `PUT` the tenant's limits (`None`: back on the defaults).
async fn set(
    json_mode: bool,
    api: &ApiArgs,
    tenant: &str,
    limits: Option<LimitsView>,
) -> Result<(), CliError> {
    let out = api
        .client()?
        .send::<_, TenantView>(
            Method::PUT,
            &format!("/v1/tenants/{}", path_segment(tenant)?),
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

/// A tenant id as one path segment: tenant ids are lower-case letters, digits, `-` and `_`,
/// so anything else is refused here rather than sent as another path.
fn path_segment(tenant: &str) -> Result<&str, CliError> {
    skyhook_domain::ids::TenantId::parse(tenant)
        .map(|_| tenant)
        .map_err(|e| CliError::Failed(format!("invalid tenant {tenant:?}: {e}")))
}
