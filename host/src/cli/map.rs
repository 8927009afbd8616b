//! `weir map ...`: a tenant's field mapping of a flow — set it, check it
//! against the partners' schemas, preview it on real records, and apply it
//! again to everything already synced.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use serde::Serialize;
use serde_json::{Value, json};

use super::app::{self, Plugins};
use super::output;
use crate::config::Config;
use crate::connection::{Connection, ConnectionServices};
use crate::contract::{ChangeKind, Record};
use crate::diagnostic::{Diagnose, Diagnostic, ErrorCode};
use crate::flow::{Destination, Feed, FlowRunner, Opener, Plan, RunOptions, RunSummary};
use crate::ids::TenantId;
use crate::mapping::{Gap, GapReport, Mapping, RuleWrite};
use crate::store::Store;
use crate::tenant::{ResolvedFlow, TenantChange, resolve_flow};

/// `weir map ...`.
#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Set a tenant's mapping of a flow from a JSON document (checked first;
    /// nothing is saved if it is wrong).
    Set {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
        /// The mapping document; `-` for standard input.
        file: PathBuf,
    },
    /// What the mapping leaves undone between the source's and the
    /// destination's schemas, each finding with a suggested rule.
    Check {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
    },
    /// Show records raw and mapped: stored ones, or the source's first page
    /// when nothing is stored yet.
    Preview {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 5)]
        count: usize,
    },
    /// Apply the current mapping (and transforms) again to every record
    /// already synced, without reading the source partner.
    Reapply {
        /// The tenant.
        tenant: String,
        /// The flow of weir.toml.
        flow: String,
    },
}

/// Runs a `map` subcommand.
pub async fn run(config_path: &Path, command: MapCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        MapCommand::Set { tenant, flow, file } => set(config_path, &tenant, &flow, &file, json),
        MapCommand::Check { tenant, flow } => check(config_path, &tenant, &flow, json).await,
        MapCommand::Preview {
            tenant,
            flow,
            count,
        } => preview(config_path, &tenant, &flow, count, json).await,
        MapCommand::Reapply { tenant, flow } => reapply(config_path, &tenant, &flow, json).await,
    }
}

/// A tenant's flow, resolved against weir.toml, with the store; or a flow
/// of weir.toml run without a tenant (no tenant then).
pub(super) struct NamedFlow {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub resolved: ResolvedFlow,
    tenant: Option<String>,
}

impl NamedFlow {
    /// Resolves `flow` for `tenant`; nothing is loaded but config and store.
    pub fn resolve(config_path: &Path, tenant: &str, flow: &str) -> anyhow::Result<Self> {
        let config = app::config(config_path)?;
        let template = config.flow(flow).map_err(app::diagnostic)?.id.clone();
        let store = app::store(&config)?;
        let settings = app::tenant(store.as_ref(), tenant)?;
        let resolved = resolve_flow(&config, &settings, &template)
            .map_err(|e| output::fail(e.diagnostic(tenant)))?;
        Ok(Self {
            config,
            store,
            resolved,
            tenant: Some(tenant.to_owned()),
        })
    }

    /// A flow of weir.toml as `weir sync <flow>` runs it, without a tenant.
    pub fn untenanted(config_path: &Path, flow: &str) -> anyhow::Result<Self> {
        let config = app::config(config_path)?;
        let resolved =
            ResolvedFlow::untenanted(&config, config.flow(flow).map_err(app::diagnostic)?);
        let store = app::store(&config)?;
        Ok(Self {
            config,
            store,
            resolved,
            tenant: None,
        })
    }

    /// The flow opened for delivery: its mapping and transforms, and its
    /// destination connection.
    pub fn plan(&self, plugins: &Plugins, services: &ConnectionServices) -> anyhow::Result<Plan> {
        Plan::open(&self.resolved, &opener(plugins, services)).map_err(output::fail)
    }

    /// The tenant's source connection.
    pub fn source(
        &self,
        plugins: &Plugins,
        services: &ConnectionServices,
    ) -> anyhow::Result<Arc<Connection>> {
        opener(plugins, services)
            .source(&self.resolved)
            .map_err(output::fail)
    }

    /// Runs the flow from a feed of what the store holds, and prints the
    /// summary with `header`'s column names.
    pub async fn run_again(
        &self,
        feed: Feed,
        json: bool,
        header: [&str; 4],
    ) -> anyhow::Result<(ExitCode, RunSummary)> {
        let plugins = Plugins::load(&self.config, &self.store).await?;
        let services = ConnectionServices::new(self.store.clone());
        let plan = self.plan(&plugins, &services)?;
        let summary = FlowRunner::new(self.store.clone())
            .run(&plan, feed, &RunOptions::default(), &())
            .await;
        services.flush().await;
        let summary = summary?;
        Ok((report(&summary, json, header)?, summary))
    }

    /// `flow `f` of tenant `t``, for messages.
    pub fn label(&self) -> String {
        match &self.tenant {
            Some(tenant) => format!("flow `{}` of tenant `{tenant}`", self.template_name()),
            None => format!("flow `{}`", self.template_name()),
        }
    }

    /// The flow's name in weir.toml.
    pub fn template_name(&self) -> &str {
        let scoped = self.resolved.flow.id.as_str();
        scoped.split_once('.').map_or(scoped, |(_, flow)| flow)
    }
}

fn opener<'a>(plugins: &'a Plugins, services: &'a ConnectionServices) -> Opener<'a> {
    Opener {
        runtime: &plugins.runtime,
        plugins: &plugins.registry,
        services,
    }
}

fn set(
    config_path: &Path,
    tenant: &str,
    flow: &str,
    file: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = app::config(config_path)?;
    config.flow(flow).map_err(app::diagnostic)?;
    let shown = if file.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        format!("`{}`", file.display())
    };
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        fs_err::read_to_string(file).map_err(|e| {
            output::fail(
                Diagnostic::new(ErrorCode::MappingInvalid, e.to_string()).with_hint(
                    "give the path of a JSON mapping document, or `-` for standard input",
                ),
            )
        })?
    };
    let document: Value = serde_json::from_str(&text).map_err(|e| {
        output::fail(
            Diagnostic::new(
                ErrorCode::MappingInvalid,
                format!("the mapping in {shown} is not JSON: {e}"),
            )
            .with_hint("a mapping is a JSON object such as `{\"fields\": [{\"to\": \"/email\", \"from\": \"/email\"}]}`; nothing was saved"),
        )
    })?;
    // Checked here first for the mapping's own hint ("did you mean ...");
    // `tenant::apply` checks it again with the rest of the tenant.
    let mapping = Mapping::parse(&document).map_err(|e| {
        output::fail(
            Diagnostic::new(
                ErrorCode::MappingInvalid,
                format!(
                    "mapping of flow `{flow}` for tenant `{tenant}` refused at `{}`: {}",
                    if e.path.is_empty() { "(document)" } else { &e.path },
                    e.reason
                ),
            )
            .with_hint(match &e.hint {
                Some(hint) => format!("{hint} (nothing was saved)"),
                None => "fix the document; README's *Field mappings* lists every key (nothing was saved)".into(),
            }),
        )
    })?;
    let store = app::store(&config)?;
    let id = TenantId::new(tenant).map_err(|_| {
        output::fail(crate::tenant::EditError::UnknownTenant(tenant.into()).diagnostic(tenant))
    })?;
    app::edit_tenant(
        &config,
        store.as_ref(),
        &id,
        TenantChange::Mapping(flow.to_owned(), Some(document.clone())),
    )?;
    let rules = document["fields"].as_array().map_or(0, Vec::len);
    if json {
        output::print_json(&json!({
            "tenant": tenant, "flow": flow, "rules": rules, "mapping": mapping.document(),
        }))?;
    } else {
        println!("mapping of flow `{flow}` saved for tenant `{tenant}` ({rules} rules)");
        println!(
            "next: `weir map check {tenant} {flow}` compares it with the schemas; `weir map reapply {tenant} {flow}` reshapes the records already synced"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `weir map check`, as JSON.
#[derive(Serialize)]
struct CheckOutput<'a> {
    tenant: &'a str,
    flow: &'a str,
    source: Endpoint,
    /// `null` for the store.
    destination: Option<Endpoint>,
    report: &'a GapReport,
    /// What each rule writes, as far as the source schema tells.
    writes: Vec<RuleWrite>,
    /// Transform plugins run after the mapping: not checked.
    transforms: Vec<&'a str>,
}

#[derive(Serialize)]
struct Endpoint {
    connection: String,
    stream: String,
}

async fn check(
    config_path: &Path,
    tenant: &str,
    flow: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let opened = NamedFlow::resolve(config_path, tenant, flow)?;
    let plugins = Plugins::load(&opened.config, &opened.store).await?;
    let services = ConnectionServices::new(opened.store.clone());
    let resolved = &opened.resolved;
    let source = opened.source(&plugins, &services)?;
    let source_schema = stream_schema(&source, &resolved.flow.stream).await;
    let destination = match opened.plan(&plugins, &services)?.destination {
        Destination::Store => None,
        Destination::Connection { connection, stream } => {
            let schema = stream_schema(&connection, &stream).await;
            Some((connection, stream, schema))
        }
    };
    services.flush().await;
    let source_schema = source_schema?;
    let mapping = resolved.flow.mapping.clone().unwrap_or_default();
    let (destination_schema, destination) = match destination {
        None => (json!({}), None),
        Some((connection, stream, schema)) => (
            schema?,
            Some(Endpoint {
                connection: connection.id().to_string(),
                stream,
            }),
        ),
    };
    let report = mapping.gap_report(&source_schema, &destination_schema);
    let writes = mapping.rule_writes(&source_schema);
    let out = CheckOutput {
        tenant,
        flow,
        source: Endpoint {
            connection: resolved.source.id.to_string(),
            stream: resolved.flow.stream.clone(),
        },
        destination,
        report: &report,
        writes,
        transforms: resolved
            .flow
            .transforms
            .iter()
            .map(|t| t.plugin.as_str())
            .collect(),
    };
    if json {
        output::print_json(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_check(&opened, &mapping, &out);
    Ok(ExitCode::SUCCESS)
}

/// The JSON Schema `discover` gives for one stream of a connection.
async fn stream_schema(connection: &Connection, stream: &str) -> anyhow::Result<Value> {
    let streams = connection
        .discover()
        .await
        .map_err(|e| output::fail(e.diagnostic()))?;
    let found = streams.iter().find(|s| s.name == stream).ok_or_else(|| {
        output::fail(
            Diagnostic::new(
                ErrorCode::UnknownStream,
                format!(
                    "connection `{}` offers no stream `{stream}`",
                    connection.id()
                ),
            )
            .with_hint(format!(
                "its streams: {}",
                streams
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        )
    })?;
    Ok(serde_json::from_str(&found.json_schema).unwrap_or(Value::Null))
}

fn print_check(opened: &NamedFlow, mapping: &Mapping, out: &CheckOutput<'_>) {
    let to = match &out.destination {
        Some(d) => format!("`{}` stream `{}`", d.connection, d.stream),
        None => "the store".to_owned(),
    };
    println!(
        "{}: `{}` stream `{}` -> {to}",
        opened.label(),
        out.source.connection,
        out.source.stream
    );
    if mapping.is_identity() {
        println!("no mapping: records are delivered as the source gives them");
    }
    if !out.transforms.is_empty() {
        println!(
            "note: transforms {} run after the mapping; only the mapping is checked",
            out.transforms
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let report = out.report;
    let sections: [(&str, &[Gap]); 3] = [
        (
            "required by the destination, written by no rule",
            &report.unwritten_required,
        ),
        ("source fields the mapping drops", &report.dropped_sources),
        (
            "rules writing what the destination does not take",
            &report.mismatches,
        ),
    ];
    let findings: usize = sections.iter().map(|(_, gaps)| gaps.len()).sum();
    for (title, gaps) in sections {
        if gaps.is_empty() {
            continue;
        }
        println!("\n{title}:");
        for gap in gaps {
            // A rule's gap names what the rule reads; other gaps name one
            // field (their `source` is then only a suggestion).
            let what = match (gap.rule, &gap.target, &gap.source) {
                (Some(rule), Some(target), Some(source)) => {
                    format!("fields[{rule}] `{target}` (from `{source}`)")
                }
                (Some(rule), Some(target), None) => format!("fields[{rule}] `{target}`"),
                (_, Some(target), _) => format!("`{target}`"),
                (_, None, Some(source)) => format!("`{source}`"),
                (_, None, None) => "the mapping".to_owned(),
            };
            println!("  {what}: {}", gap.problem);
            println!("    hint: {}", gap.hint);
            if let Some(suggestion) = &gap.suggestion {
                let verb = if gap.rule.is_some() {
                    "replace it with"
                } else {
                    "add to `fields`"
                };
                println!("    {verb}: {suggestion}");
            }
        }
    }
    if out.destination.is_none() {
        println!(
            "\nthe store takes any shape, so there is no destination schema to check against; what each rule writes:"
        );
        let mut table = output::table(["rule", "to", "from", "writes"]);
        for write in &out.writes {
            table.add_row([
                format!("fields[{}]", write.rule),
                write.to.clone(),
                write.from.clone(),
                write.writes.clone(),
            ]);
        }
        if out.writes.is_empty() {
            println!("  (no rules)");
        } else {
            println!("{table}");
        }
    }
    match findings {
        0 => println!("\nno gaps found"),
        1 => println!("\n1 finding"),
        n => println!("\n{n} findings"),
    }
}

/// One record of `weir map preview`.
#[derive(Serialize)]
struct Sample {
    key: String,
    version: Option<u64>,
    raw: Value,
    /// What the flow delivers; `null` when the record failed or a transform
    /// dropped it.
    mapped: Option<Value>,
    /// Why it failed.
    error: Option<SampleError>,
}

#[derive(Serialize)]
struct SampleError {
    stage: &'static str,
    reason: String,
}

async fn preview(
    config_path: &Path,
    tenant: &str,
    flow: &str,
    count: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let opened = NamedFlow::resolve(config_path, tenant, flow)?;
    let plugins = Plugins::load(&opened.config, &opened.store).await?;
    let services = ConnectionServices::new(opened.store.clone());
    let reshaper = opened.plan(&plugins, &services)?.reshaper;
    let resolved = &opened.resolved;
    let count = count.max(1);
    let mut records = stored_upserts(&opened, count).await?;
    let origin = if records.is_empty() {
        let source = opened.source(&plugins, &services)?;
        let page = source.read(&resolved.flow.stream, None).await;
        services.flush().await;
        let page = page.map_err(|e| output::fail(e.diagnostic()))?;
        records = page
            .records
            .into_iter()
            .filter(|r| r.kind == ChangeKind::Upsert)
            .take(count)
            .collect();
        "read from the source (nothing is stored yet)"
    } else {
        "stored"
    };
    let reshaped = reshaper
        .reshape(&records)
        .await
        .map_err(|e| output::fail(e.diagnostic()))?;
    let samples: Vec<Sample> = records
        .iter()
        .map(|record| {
            let mapped = reshaped.records.iter().find(|r| r.key == record.key);
            let failed = reshaped.failed.iter().find(|f| f.source_key == record.key);
            Sample {
                key: record.key.clone(),
                version: record.version,
                raw: parse(&record.data),
                mapped: mapped.map(|r| parse(&r.data)),
                error: failed.map(|f| SampleError {
                    stage: f.failure.stage(),
                    reason: f.failure.reason(),
                }),
            }
        })
        .collect();
    if json {
        output::print_json(
            &json!({ "tenant": tenant, "flow": flow, "records": origin, "samples": samples }),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if samples.is_empty() {
        println!("{}: no records, stored or at the source", opened.label());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}: {} records, {origin}", opened.label(), samples.len());
    for sample in &samples {
        let version = sample
            .version
            .map(|v| format!(", version {v}"))
            .unwrap_or_default();
        println!("\n── {}{version}", sample.key);
        println!("raw:\n{}", indented(&sample.raw));
        match (&sample.mapped, &sample.error) {
            (Some(mapped), _) => println!("mapped:\n{}", indented(mapped)),
            (None, Some(error)) => {
                println!("error ({}): {}", error.stage, error.reason)
            }
            (None, None) => println!("dropped by a transform"),
        }
    }
    let failed = samples.iter().filter(|s| s.error.is_some()).count();
    if failed > 0 {
        println!(
            "\n{failed} of {} records would go to the dead letters",
            samples.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Up to `count` live records of the flow's source stream, in key order.
async fn stored_upserts(opened: &NamedFlow, count: usize) -> anyhow::Result<Vec<Record>> {
    let store = opened.store.clone();
    let (connection, stream) = (
        opened.resolved.source.id.clone(),
        opened.resolved.flow.stream.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        // Deletes are skipped; a stream of nothing but tombstones stops
        // after a bounded look.
        for _ in 0..100 {
            let batch = store.scan(&connection, &stream, after.as_deref(), 200)?;
            let Some(last) = batch.last() else { break };
            after = Some(last.key.clone());
            let done = batch.len() < 200;
            found.extend(batch.into_iter().filter(|r| r.kind == ChangeKind::Upsert));
            if found.len() >= count || done {
                break;
            }
        }
        found.truncate(count);
        Ok(found)
    })
    .await
    .expect("store calls do not panic")
    .map_err(|e: crate::store::StoreError| output::fail(e.diagnostic()))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn indented(value: &Value) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_default()
        .lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn reapply(
    config_path: &Path,
    tenant: &str,
    flow: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let opened = NamedFlow::resolve(config_path, tenant, flow)?;
    let (code, _) = opened
        .run_again(
            Feed::Stored,
            json,
            ["records", "written", "dead letters", "resolved"],
        )
        .await?;
    Ok(code)
}

/// Prints a redelivery's summary; the exit code is its error's.
fn report(summary: &RunSummary, json: bool, header: [&str; 4]) -> anyhow::Result<ExitCode> {
    if let Some(error) = &summary.error {
        output::print_problem(&format!("flow `{}`: error", summary.flow), error);
    }
    if json {
        output::print_json(&json!({
            "run": summary.run,
            "flow": summary.flow,
            "status": summary.status,
            "records": summary.records_read,
            "written": summary.records_written,
            "failed": summary.records_failed,
            "resolved": summary.resolved,
            "elapsed": summary.elapsed.as_secs_f64(),
        }))?;
    } else {
        let [records, written, failed, resolved] = header;
        let mut table = output::table([
            "flow", "status", records, written, failed, resolved, "duration",
        ]);
        table.add_row([
            summary.flow.to_string(),
            summary.status.as_str().to_string(),
            output::count(summary.records_read),
            output::count(summary.records_written),
            output::count(summary.records_failed),
            output::count(summary.resolved),
            output::duration(summary.elapsed),
        ]);
        println!("{table}");
    }
    Ok(summary
        .error
        .as_ref()
        .map_or(ExitCode::SUCCESS, |e| output::exit_code(e.code)))
}
