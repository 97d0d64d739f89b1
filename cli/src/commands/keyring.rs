//! `skyhook keyring …` and `skyhook secrets migrate`: the keyring secrets are sealed under,
//! and the move of secrets from before sealing into the table. These talk to AWS with the
//! operator's own credentials (the usual AWS variables and profiles), not to the API: no
//! function may rewrite the keyring.

use clap::{Args, Subcommand};

use skyhook_aws::{Resources, SecretsAdmin, load_sdk_config};
use skyhook_cli::client::CliError;
use skyhook_domain::config;
use skyhook_domain::keyring::KEYRING_TTL;

/// Where the stack keeps its table and secrets: the names the functions are given.
#[derive(Args)]
pub struct StackArgs {
    /// The stack's table (the `TableName` output of the SAM stack).
    #[arg(long, env = config::TABLE)]
    table: String,
    /// The keyring's secret (the `KeyringSecretArn` output). No default: sealing under
    /// another stack's keyring would make this stack's secrets unreadable.
    #[arg(long = "keyring-secret", env = config::KEYRING_SECRET)]
    keyring_secret: String,
    /// Where subscribers' secrets were kept in Secrets Manager before sealing.
    #[arg(long = "secret-prefix", env = config::SECRET_PREFIX, default_value = config::DEFAULT_SECRET_PREFIX)]
    secret_prefix: String,
    /// Where sources' secrets were kept in Secrets Manager before sealing.
    #[arg(long = "source-secret-prefix", env = config::SOURCE_SECRET_PREFIX, default_value = config::DEFAULT_SOURCE_SECRET_PREFIX)]
    source_secret_prefix: String,
}

impl StackArgs {
    async fn admin(&self) -> SecretsAdmin {
        let sdk = load_sdk_config().await;
        SecretsAdmin::from_sdk(
            &sdk,
            &Resources {
                table: self.table.clone(),
                stats_table: None,
                queue_url: String::new(),
                dlq_url: None,
                secret_prefix: self.secret_prefix.clone(),
                source_secret_prefix: self.source_secret_prefix.clone(),
                keyring_secret: self.keyring_secret.clone(),
                event_bus: None,
            },
        )
    }
}

#[derive(Subcommand)]
pub enum KeyringCommand {
    /// Add a fresh key and make it the one new secrets are sealed under. Values sealed
    /// before still open; `skyhook keyring reseal` moves them to the new key.
    Rotate(StackArgs),
    /// Seal every stored secret again under the newest key. Safe to run again, and to
    /// stop halfway.
    Reseal(StackArgs),
    /// The keyring's versions, how many secrets are sealed under each, and how many are
    /// still in Secrets Manager from before sealing.
    Status(StackArgs),
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Move every subscriber's and source's secret from Secrets Manager (one secret each,
    /// from before sealing) into the table, sealed; each old secret is deleted only after
    /// its sealed copy reads back. Safe to run twice.
    Migrate(StackArgs),
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

pub async fn keyring(json_mode: bool, cmd: KeyringCommand) -> Result<(), CliError> {
    match cmd {
        KeyringCommand::Rotate(stack) => {
            let version = stack.admin().await.rotate_keyring().await.map_err(failed)?;
            if json_mode {
                println!("{}", serde_json::json!({ "current": version }));
            } else {
                println!(
                    "keyring: version {version} is current. Every function seals new secrets \
                     with it within {} minutes; then run `skyhook keyring reseal`.",
                    KEYRING_TTL.as_secs() / 60
                );
            }
        }
        KeyringCommand::Reseal(stack) => {
            let r = stack.admin().await.reseal().await.map_err(failed)?;
            if json_mode {
                println!(
                    "{}",
                    serde_json::json!({
                        "current": r.current, "checked": r.checked,
                        "resealed": r.resealed, "changed": r.changed,
                        "failed": r.failed.iter().map(|(key, why)| serde_json::json!({"item": key, "error": why})).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!(
                    "resealed {} of {} secrets under version {}",
                    r.resealed, r.checked, r.current
                );
                if r.changed > 0 {
                    println!(
                        "{} changed while this ran: run `skyhook keyring reseal` again",
                        r.changed
                    );
                }
                for (key, why) in &r.failed {
                    println!("  left {key}: {why}");
                }
            }
            if !r.failed.is_empty() {
                return Err(CliError::Failed(format!(
                    "{} sealed secrets could not be read; the rest are resealed",
                    r.failed.len()
                )));
            }
        }
        KeyringCommand::Status(stack) => {
            let s = stack.admin().await.status().await.map_err(failed)?;
            if json_mode {
                println!(
                    "{}",
                    serde_json::json!({
                        "current": s.current, "versions": s.versions,
                        "sealed": s.sealed.iter().map(|(v, n)| (v.to_string(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
                        "unreadable": s.unreadable,
                        "legacy": s.legacy,
                    })
                );
            } else {
                println!("current version {} (held: {:?})", s.current, s.versions);
                for (version, count) in &s.sealed {
                    println!("  version {version}: {count} sealed secrets");
                }
                if s.unreadable > 0 {
                    println!("  unreadable: {} (malformed sealed values)", s.unreadable);
                }
                println!(
                    "  in Secrets Manager from before sealing: {} (skyhook secrets migrate)",
                    s.legacy
                );
            }
        }
    }
    Ok(())
}

pub async fn secrets(json_mode: bool, cmd: SecretsCommand) -> Result<(), CliError> {
    let SecretsCommand::Migrate(stack) = cmd;
    let r = stack.admin().await.migrate().await.map_err(failed)?;
    if json_mode {
        println!(
            "{}",
            serde_json::json!({
                "subscribers": r.subscribers, "sources": r.sources,
                "failed": r.failed.iter().map(|(name, why)| serde_json::json!({"secret": name, "error": why})).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "moved {} subscriber and {} source secrets into the table",
            r.subscribers, r.sources
        );
        for (name, why) in &r.failed {
            println!("  left {name}: {why}");
        }
    }
    if r.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} secrets were not moved (kept where they were)",
            r.failed.len()
        )))
    }
}
