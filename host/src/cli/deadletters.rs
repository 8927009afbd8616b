//! `weir deadletters ...`: records a flow could not deliver, and
//! delivering them again once the cause is fixed. The flow is one of
//! weir.toml run without a tenant (`contacts`), or a tenant's instance of
//! one (`t1 contacts`, or `t1.contacts` as `weir runs` spells it).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::map::NamedFlow;
use super::output;
use crate::diagnostic::Diagnose;
use crate::flow::Feed;

/// `weir deadletters ...`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List a flow's dead letters, oldest first: key, stage, error, when.
    List {
        #[command(flatten)]
        flow: Which,
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Reshape and deliver them again; those that go through are removed,
    /// the others kept with the reason of now.
    Retry {
        #[command(flatten)]
        flow: Which,
    },
}

/// Which flow's dead letters.
#[derive(Debug, Args)]
pub struct Which {
    /// The flow of weir.toml (as `weir sync <flow>` runs it), or a
    /// tenant's instance of it: `<tenant> <flow>` or `tenant.flow`.
    #[arg(value_name = "[TENANT] FLOW", num_args = 1..=2, required = true)]
    names: Vec<String>,
}

impl Which {
    fn open(&self, config_path: &Path) -> anyhow::Result<NamedFlow> {
        match self.names.as_slice() {
            [tenant, flow] => NamedFlow::resolve(config_path, tenant, flow),
            [name] => match name.split_once('.') {
                Some((tenant, flow)) => NamedFlow::resolve(config_path, tenant, flow),
                None => NamedFlow::untenanted(config_path, name),
            },
            _ => unreachable!("clap takes one or two names"),
        }
    }

    /// The names as given, for the commands messages suggest.
    fn spelled(&self) -> String {
        self.names.join(" ")
    }
}

/// Runs a `deadletters` subcommand.
pub async fn run(
    config_path: &Path,
    command: DeadLettersCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        DeadLettersCommand::List { flow, limit } => {
            let opened = flow.open(config_path)?;
            let store = opened.store.clone();
            let id = opened.resolved.flow.id.clone();
            let letters = tokio::task::spawn_blocking(move || store.dead_letters(&id, limit))
                .await
                .expect("store calls do not panic")
                .map_err(|e| output::fail(e.diagnostic()))?;
            if json {
                output::print_json(&letters)?;
                return Ok(ExitCode::SUCCESS);
            }
            if letters.is_empty() {
                println!("{}: no dead letters", opened.label());
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = output::table(["key", "stage", "error", "when", "run"]);
            for letter in &letters {
                table.add_row([
                    letter.source_key.clone(),
                    letter.stage.clone(),
                    letter.error.clone(),
                    output::timestamp(letter.created_at_ms),
                    letter.run.to_string(),
                ]);
            }
            println!("{table}");
            if letters.len() == limit {
                println!("the oldest {limit} are shown; `--limit` shows more");
            }
            println!(
                "fix the mapping (`weir map set`, or `mapping` in weir.toml for a flow without a tenant) or the data at the partner, then `weir deadletters retry {}`",
                flow.spelled()
            );
            Ok(ExitCode::SUCCESS)
        }
        DeadLettersCommand::Retry { flow } => {
            let opened = flow.open(config_path)?;
            let (code, summary) = opened
                .run_again(
                    Feed::DeadLetters,
                    json,
                    ["retried", "written", "still failing", "resolved"],
                )
                .await?;
            if !json && summary.records_failed > 0 {
                println!(
                    "{} still failing: `weir deadletters list {}` shows why",
                    summary.records_failed,
                    flow.spelled()
                );
            }
            Ok(code)
        }
    }
}
