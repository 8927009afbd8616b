//! The `weir` command: parse, run, print the error chain with its code and
//! hint, exit with a code scripts can rely on.

mod app;
mod audit;
mod connection;
mod daemon;
mod deadletters;
mod explain;
mod map;
mod output;
mod plugins;
mod state;
mod status;
mod sync;
mod tenants;
mod validate;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Weir runs sandboxed WebAssembly partner connectors and syncs their data
/// into a local store.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, propagate_version = true)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "WEIR_CONFIG",
        default_value = "weir.toml"
    )]
    config: PathBuf,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// More log output (repeat for more); `WEIR_LOG` sets filters precisely.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log every request to partners: method, whole URL, status and the
    /// start of a failed answer's body, with secret values redacted.
    #[arg(long, global = true)]
    debug_http: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run flows once: read what changed since the last run and store it.
    Sync(sync::SyncArgs),
    /// Run as a daemon: schedule every tenant's flows, serve the admin API.
    Run,
    /// Every tenant's flows: enabled, schedule, last and next run, health.
    Status,
    /// Manage tenants (customers' installations of the integration).
    #[command(subcommand)]
    Tenants(tenants::TenantsCommand),
    /// Turn a tenant's flows on or off, set their schedules.
    #[command(subcommand)]
    Flows(tenants::FlowsCommand),
    /// A tenant's field mapping of a flow: set, check, preview, reapply.
    #[command(subcommand)]
    Map(map::MapCommand),
    /// Records a tenant's flow could not deliver: list them, retry them.
    #[command(subcommand, name = "deadletters")]
    DeadLetters(deadletters::DeadLettersCommand),
    /// Webhook deliveries given up on after their last attempt: list them,
    /// retry them.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Check a connection's configuration and credentials with the partner.
    Check {
        /// The connection's name in weir.toml.
        connection: String,
    },
    /// Check weir.toml against the connectors it names, without reaching
    /// a partner: report every problem at once (exit 2 if any is an error).
    Validate,
    /// List the streams a connection offers.
    Discover {
        /// The connection's name in weir.toml.
        connection: String,
    },
    /// List plugins (loaded ones and files that failed to load), or
    /// inspect one plugin file.
    Plugins {
        #[command(subcommand)]
        command: Option<plugins::PluginsCommand>,
    },
    /// Show recent runs, of one flow or of all.
    Runs {
        /// Only runs of this flow, or of a tenant's instance of it: `tenant.flow`.
        flow: Option<String>,
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show the outbound requests connectors made (the audit log).
    Audit {
        /// Only requests of this connection.
        connection: Option<String>,
        /// How many requests to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show or reset a flow's checkpoint.
    #[command(subcommand)]
    State(state::StateCommand),
    /// Explain an error code (or list them all).
    Explain {
        /// The code, e.g. `egress-denied`.
        code: Option<String>,
    },
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.verbose, cli.debug_http);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return output::report(
                &anyhow::Error::from(err).context("cannot start the async runtime"),
            );
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => output::report(&err),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    match cli.command {
        Command::Explain { code } => explain::run(code.as_deref(), json),
        Command::Sync(args) => sync::run(&cli.config, args, json).await,
        Command::Run => daemon::run(&cli.config).await,
        Command::Status => status::run(&cli.config, json),
        Command::Tenants(command) => tenants::tenants(&cli.config, command, json),
        Command::Flows(command) => tenants::flows(&cli.config, command, json),
        Command::Map(command) => map::run(&cli.config, command, json).await,
        Command::DeadLetters(command) => deadletters::run(&cli.config, command, json).await,
        Command::Webhooks(command) => webhooks::run(&cli.config, command, json),
        Command::Check { connection } => connection::check(&cli.config, &connection, json).await,
        Command::Validate => validate::run(&cli.config, json).await,
        Command::Discover { connection } => {
            connection::discover(&cli.config, &connection, json).await
        }
        Command::Plugins { command } => plugins::run(&cli.config, command, json).await,
        Command::Runs { flow, limit } => state::runs(&cli.config, flow.as_deref(), limit, json),
        Command::Audit { connection, limit } => {
            audit::run(&cli.config, connection.as_deref(), limit, json)
        }
        Command::State(command) => state::run(&cli.config, command, json),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    #[test]
    fn the_command_tree_passes_clap_debug_asserts() {
        Cli::command().debug_assert();
    }

    /// Clap lets a subcommand's own argument take the id of a global one,
    /// and then panics at parse time when their types differ.
    #[test]
    fn no_subcommand_argument_shadows_a_global_option() {
        fn walk(
            command: &clap::Command,
            path: &str,
            globals: &[&clap::Arg],
            found: &mut Vec<String>,
        ) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                for arg in sub.get_arguments() {
                    let shadows = globals.iter().any(|global| {
                        global.get_id() == arg.get_id()
                            || (global.get_long().is_some() && global.get_long() == arg.get_long())
                            || (global.get_short().is_some()
                                && global.get_short() == arg.get_short())
                    });
                    if shadows {
                        found.push(format!("`{path}` argument `{}`", arg.get_id()));
                    }
                }
                walk(sub, &path, globals, found);
            }
        }
        let root = Cli::command();
        let globals: Vec<&clap::Arg> = root.get_arguments().filter(|a| a.is_global_set()).collect();
        let mut found = Vec::new();
        walk(&root, "weir", &globals, &mut found);
        assert!(found.is_empty(), "shadowing global options: {found:?}");
    }
}
