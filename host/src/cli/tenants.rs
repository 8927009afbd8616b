//! `weir tenants ...` and `weir flows ...`: the admin API's
//! operations from the command line, on the same store. A running daemon
//! picks the changes up without a restart.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{app, output};
use crate::config::Config;
use crate::diagnostic::Diagnose;
use crate::ids::TenantId;
use crate::store::Store;
use crate::tenant::{Tenant, TenantChange, TenantConnection};

/// `weir tenants ...`.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// List tenants.
    List,
    /// Show one tenant's settings as JSON.
    Show {
        /// The tenant.
        tenant: String,
    },
    /// Create a tenant (every flow as weir.toml says); an existing one is
    /// never replaced (`weir tenants set` does that).
    Add {
        /// Its name (letters, digits, `-`, `_`; no `.`).
        tenant: String,
        /// A name for people.
        #[arg(long)]
        name: Option<String>,
    },
    /// Replace a tenant's settings with a JSON document (as the admin API takes).
    Set {
        /// The tenant.
        tenant: String,
        /// The JSON file; `-` for standard input.
        file: PathBuf,
    },
    /// Set a tenant's config and secrets for one connection.
    Connect {
        /// The tenant.
        tenant: String,
        /// The connection of weir.toml.
        connection: String,
        /// Config values merged over weir.toml's, as a JSON object (named
        /// apart from the global `--config <PATH>` of weir.toml itself).
        #[arg(long = "connection-config", value_name = "JSON", default_value = "{}")]
        connection_config: String,
        /// Secrets, as a JSON object: `{"api_key": {"env": "VAR"}}`, or
        /// `{"api_key": {"value": "..."}}` to keep the value sealed.
        #[arg(long, value_name = "JSON", default_value = "{}")]
        secrets: String,
    },
    /// Keep a tenant's runs on one version of a connector (a staged
    /// rollout); the version must be one Weir keeps (`weir plugins`).
    Pin {
        /// The tenant.
        tenant: String,
        /// The connector's name, e.g. `acme-crm`.
        connector: String,
        /// The version, e.g. `1.4.0`.
        #[arg(value_name = "VERSION")]
        pinned: String,
    },
    /// Let a tenant's runs follow the serving version of a connector again.
    Unpin {
        /// The tenant.
        tenant: String,
        /// The connector's name.
        connector: String,
    },
    /// Remove a tenant's settings (its synced data stays).
    Remove {
        /// The tenant.
        tenant: String,
    },
    /// Seal every tenant's secret values again with the first `[secrets]
    /// key`, after a new key was put first; then the old ones can go.
    Reseal,
}

/// `weir flows ...`.
#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// Turn a tenant's flow on.
    Enable {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
    },
    /// Turn a tenant's flow off.
    Disable {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
    },
    /// Set a tenant's schedule of a flow: `every 15m`, a cron expression, or `default`.
    Schedule {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
        /// The schedule.
        schedule: String,
    },
}

fn tenant_id(name: &str) -> anyhow::Result<TenantId> {
    TenantId::new(name).map_err(|e| {
        output::fail(crate::diagnostic::Diagnostic::new(
            crate::diagnostic::ErrorCode::UnknownTenant,
            e.to_string(),
        ))
    })
}

fn change(
    config_path: &Path,
    tenant: &str,
    change: TenantChange,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    let store = app::store(&config)?;
    let id = tenant_id(tenant)?;
    let saved = app::edit_tenant(&config, store.as_ref(), &id, change)?;
    if json {
        output::print_json(&saved)?;
    } else {
        println!("tenant `{tenant}` saved; a running `weir run` applies it within a second");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `tenants` subcommand.
pub fn tenants(
    config_path: &Path,
    command: TenantsCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        TenantsCommand::List => {
            let config = app::config(config_path)?;
            let store = app::store(&config)?;
            let tenants = store.tenants().map_err(|e| output::fail(e.diagnostic()))?;
            if json {
                output::print_json(&tenants)?;
            } else if tenants.is_empty() {
                println!("no tenants yet: `weir tenants add <name>` creates one");
            } else {
                let mut table = output::table(["tenant", "name", "connections set", "flows set"]);
                for t in tenants {
                    table.add_row([
                        t.id.to_string(),
                        t.name,
                        crate::suggest::listed(t.connections.keys()),
                        crate::suggest::listed(t.flows.keys()),
                    ]);
                }
                println!("{table}");
            }
            Ok(ExitCode::SUCCESS)
        }
        TenantsCommand::Show { tenant } => {
            let config = app::config(config_path)?;
            let store = app::store(&config)?;
            let id = tenant_id(&tenant)?;
            let found = store
                .tenant(&id)
                .map_err(|e| output::fail(e.diagnostic()))?;
            match found {
                Some(t) => output::print_json(&t)?,
                None => {
                    return Err(output::fail(
                        crate::tenant::EditError::UnknownTenant(tenant.clone()).diagnostic(&tenant),
                    ));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TenantsCommand::Add { tenant, name } => {
            let id = tenant_id(&tenant)?;
            let mut new = Tenant::new(id);
            if let Some(name) = name {
                new.name = name;
            }
            change(config_path, &tenant, TenantChange::Create(new), json)
        }
        TenantsCommand::Set { tenant, file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                fs_err::read_to_string(&file)?
            };
            let document: Tenant = serde_json::from_str(&text).map_err(|e| {
                output::fail(crate::diagnostic::Diagnostic::new(
                    crate::diagnostic::ErrorCode::TenantInvalid,
                    format!("`{}` is not a tenant document: {e}", file.display()),
                ))
            })?;
            change(config_path, &tenant, TenantChange::Replace(document), json)
        }
        TenantsCommand::Connect {
            tenant,
            connection,
            connection_config,
            secrets,
        } => {
            fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> anyhow::Result<T> {
                serde_json::from_str(text).map_err(|e| {
                    output::fail(crate::diagnostic::Diagnostic::new(
                        crate::diagnostic::ErrorCode::TenantInvalid,
                        format!("--{what} is not a JSON object: {e}"),
                    ))
                })
            }
            let settings = TenantConnection {
                config: parse("connection-config", &connection_config)?,
                secrets: parse("secrets", &secrets)?,
            };
            change(
                config_path,
                &tenant,
                TenantChange::Connection(connection, settings),
                json,
            )
        }
        TenantsCommand::Pin {
            tenant,
            connector,
            pinned,
        } => change(
            config_path,
            &tenant,
            TenantChange::Pin(connector, Some(pinned)),
            json,
        ),
        TenantsCommand::Unpin { tenant, connector } => change(
            config_path,
            &tenant,
            TenantChange::Pin(connector, None),
            json,
        ),
        TenantsCommand::Remove { tenant } => {
            let config = app::config(config_path)?;
            let store = app::store(&config)?;
            let removed = store
                .delete_tenant(&tenant_id(&tenant)?)
                .map_err(|e| output::fail(e.diagnostic()))?;
            if !removed {
                return Err(output::fail(
                    crate::tenant::EditError::UnknownTenant(tenant.clone()).diagnostic(&tenant),
                ));
            }
            println!("tenant `{tenant}` removed; its synced data stays in the store");
            Ok(ExitCode::SUCCESS)
        }
        TenantsCommand::Reseal => {
            let config = app::config(config_path)?;
            let store = app::store(&config)?;
            let done = reseal_all(&config, store.as_ref())?;
            if json {
                output::print_json(&done)?;
            } else {
                println!(
                    "{} secret values of {} tenants sealed again with the first `[secrets] key`; the other keys can go once every `weir` process has the new one",
                    done.values, done.tenants
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a `flows` subcommand.
pub fn flows(config_path: &Path, command: FlowsCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        FlowsCommand::Enable { tenant, flow } => {
            change(config_path, &tenant, TenantChange::Enable(flow), json)
        }
        FlowsCommand::Disable { tenant, flow } => {
            change(config_path, &tenant, TenantChange::Disable(flow), json)
        }
        FlowsCommand::Schedule {
            tenant,
            flow,
            schedule,
        } => {
            let schedule = (schedule != "default").then_some(schedule);
            change(
                config_path,
                &tenant,
                TenantChange::Schedule(flow, schedule),
                json,
            )
        }
    }
}

/// What `weir tenants reseal` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
struct Resealed {
    /// Secret values sealed again.
    values: u64,
    /// Tenants saved.
    tenants: u64,
}

/// Seals every tenant's secret values again with the first `[secrets]
/// key`; a value that opens with none of the keys stops it, naming the
/// tenant.
fn reseal_all(config: &Config, store: &dyn Store) -> anyhow::Result<Resealed> {
    let mut done = Resealed::default();
    for mut tenant in store.tenants().map_err(|e| output::fail(e.diagnostic()))? {
        let resealed = crate::tenant::reseal(config, &mut tenant)
            .map_err(|e| output::fail(e.diagnostic(tenant.id.as_str())))?;
        if resealed == 0 {
            continue;
        }
        store
            .save_tenant(&tenant)
            .map_err(|e| output::fail(e.diagnostic()))?;
        done.values += resealed;
        done.tenants += 1;
    }
    Ok(done)
}
