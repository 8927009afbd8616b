//! The middle of a flow: a page's records reshaped by the tenant's field
//! mapping, then by transform plugins, before they reach the destination.
//! A record that fails is set aside as a dead letter; the page goes on.

use std::sync::Arc;

use crate::call::{CallEnv, CallError, CallLimits, CallScope, GuestCall};
use crate::config::TransformConfig;
use crate::contract::{ChangeKind, Record};
use crate::diagnostic::{Diagnostic, ErrorCode};
use crate::mapping::Mapping;
use crate::plugin::{Plugin, PluginKind, PluginRegistry};
use crate::runtime::Runtime;
use crate::store::{DeadLetter, DeliveryFailure};

/// One transform plugin with its configuration.
pub struct TransformStage {
    plugin: Arc<Plugin>,
    env: Arc<CallEnv>,
    config: String,
}

impl TransformStage {
    async fn apply(
        &self,
        records: Vec<String>,
    ) -> Result<Vec<Result<Option<String>, crate::contract::ConnectorError>>, CallError> {
        let PluginKind::Transformer { pre } = &self.plugin.kind else {
            unreachable!("checked when the stage was built")
        };
        let expected = records.len();
        let mut store = self.env.new_store();
        let results = GuestCall::new(&mut store, "transform")
            .run(async |store| pre.transform(store, &self.config, records).await)
            .await?;
        if results.len() != expected {
            return Err(CallError::Contract {
                plugin: format!("transform `{}`", self.plugin.name),
                call: "transform",
                detail: format!("returned {} results for {expected} records", results.len()),
            });
        }
        Ok(results)
    }
}

/// What a page became.
pub struct Reshaped {
    /// Records ready for the destination, in page order.
    pub records: Vec<Record>,
    /// Records that failed, with why.
    pub failed: Vec<DeadLetter>,
}

/// A flow's mapping and transforms.
#[derive(Default)]
pub struct Reshaper {
    mapping: Option<Arc<Mapping>>,
    transforms: Vec<TransformStage>,
}

impl Reshaper {
    /// Keeps records as read.
    pub fn identity() -> Self {
        Self::default()
    }

    /// A mapping alone, without transform plugins.
    pub fn mapping(mapping: Arc<Mapping>) -> Self {
        Self {
            mapping: Some(mapping).filter(|m| !m.is_identity()),
            transforms: Vec::new(),
        }
    }

    /// A mapping (none: records as read) followed by transform plugins.
    pub fn new(
        runtime: &Runtime,
        registry: &PluginRegistry,
        mapping: Option<Arc<Mapping>>,
        transforms: &[TransformConfig],
    ) -> Result<Self, Diagnostic> {
        let transforms = transforms
            .iter()
            .map(|t| {
                let plugin = registry
                    .get(&t.plugin)
                    .filter(|p| matches!(p.kind, PluginKind::Transformer { .. }))
                    .cloned()
                    .ok_or_else(|| {
                        Diagnostic::new(
                            ErrorCode::ConnectorNotLoaded,
                            format!("no loaded transform plugin is named `{}`", t.plugin),
                        )
                        .with_hint("copy the transform's .wasm into the plugins directory; `weir plugins` lists what is loaded")
                    })?;
                Ok(TransformStage {
                    env: runtime.call_env(plugin.label(), CallScope::Sealed, CallLimits::default()),
                    config: t.config.to_string(),
                    plugin,
                })
            })
            .collect::<Result<_, Diagnostic>>()?;
        Ok(Self {
            mapping: mapping.filter(|m| !m.is_identity()),
            transforms,
        })
    }

    /// Whether records pass unchanged.
    pub fn is_identity(&self) -> bool {
        self.mapping.is_none() && self.transforms.is_empty()
    }

    /// Reshapes a page. Deletes pass through as they are: there is nothing
    /// to map in a tombstone.
    pub async fn reshape(&self, records: &[Record]) -> Result<Reshaped, CallError> {
        let mut failed = Vec::new();
        // Each record as it is now, beside the raw record it came from.
        let mut items: Vec<(Record, &Record)> = Vec::with_capacity(records.len());
        for record in records {
            let data = match (&self.mapping, record.kind) {
                (Some(mapping), ChangeKind::Upsert) => match mapping.apply_text(&record.data) {
                    Ok(data) => data,
                    Err(error) => {
                        failed.push(dead_letter(
                            record,
                            DeliveryFailure::Mapping(error.to_string()),
                        ));
                        continue;
                    }
                },
                _ => record.data.clone(),
            };
            items.push((
                Record {
                    data,
                    ..record.clone()
                },
                record,
            ));
        }
        for stage in &self.transforms {
            let (upserts, deletes): (Vec<_>, Vec<_>) = items
                .into_iter()
                .partition(|(r, _)| r.kind == ChangeKind::Upsert);
            let inputs = upserts.iter().map(|(r, _)| r.data.clone()).collect();
            let results = stage.apply(inputs).await?;
            items = deletes;
            for ((record, source), result) in upserts.into_iter().zip(results) {
                match result {
                    Ok(Some(data)) => items.push((Record { data, ..record }, source)),
                    Ok(None) => {}
                    Err(error) => {
                        failed.push(dead_letter(source, DeliveryFailure::Transform(error)))
                    }
                }
            }
        }
        Ok(Reshaped {
            records: items.into_iter().map(|(record, _)| record).collect(),
            failed,
        })
    }
}

fn dead_letter(record: &Record, failure: DeliveryFailure) -> DeadLetter {
    DeadLetter {
        source_key: record.key.clone(),
        version: record.version,
        data: record.data.clone(),
        failure,
    }
}
