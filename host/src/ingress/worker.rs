//! Stored deliveries become changes: workers claim them from the inbox
//! with a lease (at-least-once), let the connector turn each into change
//! notices, fetch the current record when a notice is thin or carries no
//! version, and merge by version into the store; flows fed by the stream
//! then reshape and deliver what changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::Ingress;
use crate::call::CallError;
use crate::connection::Connection;
use crate::contract::{ChangeKind, ChangeNotice, IncomingRequest, Record};
use crate::diagnostic::Diagnostic;
use crate::flow::{Feed, Opener, Plan, RetryPolicy, RunOptions};
use crate::ids::{FlowId, TenantId};
use crate::inbox::ClaimedDelivery;
use crate::store::{ChangeSource, StoreError};
use crate::tenant::{TenantError, resolve_flow};

/// Deliveries claimed at once.
const BATCH: usize = 50;
/// How long a claim lasts before another worker may take the delivery.
const LEASE: Duration = Duration::from_secs(60);
/// Deliveries one worker handles at once.
const CONCURRENCY: usize = 16;
/// How long a worker waits when the inbox is empty.
const IDLE: Duration = Duration::from_millis(50);

/// Processes stored deliveries until `shutdown`.
pub async fn process_deliveries(ingress: Arc<Ingress>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let claimed = match ingress.inbox().claim(BATCH, LEASE).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::warn!("cannot claim webhook deliveries: {err}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(IDLE) => {}
            }
            continue;
        }
        // Deliveries of a batch are handled side by side: the version-aware
        // merge makes their order irrelevant, and their settlements share
        // the inbox's group commits.
        let batch =
            futures_util::stream::iter(claimed).for_each_concurrent(CONCURRENCY, |delivery| {
                let ingress = ingress.clone();
                async move { settle(&ingress, delivery).await }
            });
        tokio::select! {
            // A shutdown starts no request or call: the deliveries in hand
            // stay processing, and the next daemon, owning the inbox, takes
            // them back at once (processing them twice is harmless: merges
            // go by version, writes carry idempotency keys).
            biased;
            () = shutdown.cancelled() => break,
            () = batch => {}
        }
    }
}

async fn settle(ingress: &Ingress, delivery: ClaimedDelivery) {
    let (claim, received_at_ms) = (delivery.claim(), delivery.received_at_ms);
    let id = claim.id;
    let settled = match process(ingress, delivery).await {
        Ok(()) => {
            ingress.counters.record_applied(received_at_ms);
            ingress.inbox().complete(claim).await.map(drop)
        }
        Err(why) => {
            tracing::warn!("webhook delivery {id:?} not processed yet: {why}");
            let retry_delay = ingress.daemon().config.ingress.retry_delay;
            ingress
                .inbox()
                .fail(claim, &why.to_string(), retry_delay)
                .await
                .map(drop)
        }
    };
    if let Err(err) = settled {
        tracing::warn!("cannot settle webhook delivery {id:?}: {err}");
    }
}

/// Why a delivery cannot be processed now; the inbox tries it again later.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotProcessed {
    /// Its tenant was deleted since it arrived.
    #[error("tenant `{0}` no longer exists")]
    TenantGone(TenantId),
    /// The tenant's settings do not resolve against weir.toml.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// A connection or transform cannot be opened (a connector not loaded,
    /// a secret missing).
    #[error(transparent)]
    Unavailable(#[from] Diagnostic),
    /// The connector failed on the delivery.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A flow fed by the changes did not deliver them.
    #[error("flow `{flow}` did not deliver the changes: {error}")]
    Flow { flow: FlowId, error: Diagnostic },
}

async fn process(ingress: &Ingress, delivery: ClaimedDelivery) -> Result<(), NotProcessed> {
    let connection = ingress
        .connection(&delivery.tenant, delivery.connection.as_str())
        .await?;
    let request = IncomingRequest {
        method: delivery.method.clone(),
        path: delivery.path.clone(),
        query: delivery.query.clone().unwrap_or_default(),
        headers: delivery
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect(),
        body: delivery.body.to_vec(),
        received_at_ms: delivery.received_at_ms as u64,
    };
    let notices = connection.handle_webhook(&request).await?;
    let mut by_stream: BTreeMap<String, Vec<ChangeNotice>> = BTreeMap::new();
    for notice in notices {
        by_stream
            .entry(notice.stream.clone())
            .or_default()
            .push(notice);
    }
    for (stream, notices) in by_stream {
        let records = authoritative(&connection, &stream, notices).await?;
        let store = ingress.daemon_store();
        let scoped = connection.id().clone();
        let merged = {
            let stream = stream.clone();
            tokio::task::spawn_blocking(move || {
                store.merge(&scoped, &stream, &records, ChangeSource::Webhook)
            })
            .await
            .expect("store calls do not panic")?
        };
        if merged.conflicts > 0 {
            log_conflicts(ingress, &connection, &stream, merged.conflicts);
        }
        if !merged.applied.is_empty() {
            feed_flows(
                ingress,
                &delivery.tenant,
                delivery.connection.as_str(),
                &stream,
                merged.applied,
            )
            .await?;
        }
    }
    Ok(())
}

/// Logs the first merge conflicts of a tenant connection's stream.
fn log_conflicts(ingress: &Ingress, connection: &Connection, stream: &str, conflicts: u64) {
    let first = ingress
        .conflicts_logged
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((connection.id().to_string(), stream.to_string()));
    if first {
        let warning = crate::store::conflict_warning(&connection.plugin().name, stream, conflicts);
        tracing::warn!("connection `{}`: {warning}", connection.id());
    }
}

/// Records to merge: those the notices carry with a version; the others
/// (thin events, no version) fetched from the partner, which is the truth.
async fn authoritative(
    connection: &Connection,
    stream: &str,
    notices: Vec<ChangeNotice>,
) -> Result<Vec<Record>, CallError> {
    let mut records = Vec::with_capacity(notices.len());
    let mut to_fetch = Vec::new();
    for notice in notices {
        match (notice.data, notice.version) {
            (Some(data), Some(version)) => records.push(Record {
                key: notice.key,
                version: Some(version),
                kind: notice.kind,
                data,
            }),
            (None, Some(version)) if notice.kind == ChangeKind::Delete => records.push(Record {
                key: notice.key,
                version: Some(version),
                kind: ChangeKind::Delete,
                data: "{}".into(),
            }),
            _ => to_fetch.push(notice.key),
        }
    }
    if !to_fetch.is_empty() {
        records.extend(connection.fetch(stream, to_fetch).await?);
    }
    Ok(records)
}

/// Hands merged changes to the tenant's flows that read this stream and
/// take webhooks: each runs once on them, recorded as a `webhook` run.
/// Retries are the inbox's: a call that fails fails the delivery.
async fn feed_flows(
    ingress: &Ingress,
    tenant: &TenantId,
    connection: &str,
    stream: &str,
    applied: Vec<Record>,
) -> Result<(), NotProcessed> {
    let daemon = ingress.daemon();
    let stored = {
        let (store, id) = (daemon.store.clone(), tenant.clone());
        tokio::task::spawn_blocking(move || store.tenant(&id))
            .await
            .expect("store calls do not panic")?
    };
    let Some(stored) = stored else { return Ok(()) };
    let plugins = daemon.plugins();
    let opener = Opener {
        runtime: &daemon.runtime,
        plugins: &plugins,
        services: &daemon.services,
    };
    let options = RunOptions {
        retry: RetryPolicy::none(),
        ..RunOptions::default()
    };
    for template in daemon.config.flows.values() {
        if template.source.as_str() != connection || template.stream != stream {
            continue;
        }
        let resolved = resolve_flow(&daemon.config, &stored, &template.id)?;
        let takes_webhooks = resolved.flow.trigger.is_none_or(|t| t.webhooks());
        // A flow whose tenant has not connected its destination takes
        // nothing, as if it were off: nothing may reach that partner.
        if !resolved.enabled || !takes_webhooks || resolved.not_connected().next().is_some() {
            continue;
        }
        let plan = Plan::open(&resolved, &opener)?;
        if !plan.delivers_beyond_the_merge() {
            continue;
        }
        let summary = daemon
            .runner
            .run(&plan, Feed::Changes(applied.clone()), &options, &())
            .await?;
        if let Some(error) = summary.error {
            return Err(NotProcessed::Flow {
                flow: plan.flow.id,
                error,
            });
        }
        if summary.records_failed > 0 {
            tracing::warn!(tenant = %tenant, "{} webhook change(s) went to the dead letters", summary.records_failed);
        }
    }
    Ok(())
}
