use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::retry::{Attempts, Next, RetryPolicy};
use crate::call::CallError;
use crate::connection::Connection;
use crate::contract::{ChangeKind, ConnectorError, Record, WriteRequest};
use crate::ids::FlowId;
use crate::store::{DeadLetter, DeliveryFailure, IdLink, IdLinks, StoreError};

/// Where a flow delivers records.
#[derive(Clone)]
pub enum Destination {
    /// The local store.
    Store,
    /// A stream of another connection, written through its connector.
    Connection {
        /// The connection written to.
        connection: Arc<Connection>,
        /// Its stream.
        stream: String,
    },
}

impl Destination {
    /// Whether records go to a partner rather than the store.
    pub fn is_partner(&self) -> bool {
        matches!(self, Destination::Connection { .. })
    }
}

/// The result of writing one page to a partner.
pub struct Delivered {
    pub links: Vec<IdLink>,
    pub dead_letters: Vec<DeadLetter>,
}

/// Why a page could not be delivered.
enum DeliveryError {
    Call(CallError),
    Store(StoreError),
}

/// Why a page stayed undelivered after the retries a policy allows.
pub enum Undelivered {
    /// The store failed.
    Store(StoreError),
    /// The partner asks to wait longer than retries do: pause the run.
    Pause(CallError),
    /// Retrying will not help.
    Fail(CallError),
}

/// [`deliver`], retrying what may pass as `retry` allows.
pub async fn deliver_retrying(
    flow: &FlowId,
    records: &[Record],
    raw: &[Record],
    connection: &Connection,
    stream: &str,
    links: &(impl IdLinks + ?Sized),
    retry: &RetryPolicy,
) -> Result<Delivered, Undelivered> {
    let mut attempts = Attempts::within(connection.config().limits.deadline);
    loop {
        match deliver(flow, records, raw, connection, stream, links).await {
            Ok(delivered) => return Ok(delivered),
            Err(DeliveryError::Store(error)) => return Err(Undelivered::Store(error)),
            Err(DeliveryError::Call(error)) => match retry.next(&error, &mut attempts) {
                Next::RetryAfter(delay) => tokio::time::sleep(delay).await,
                Next::Pause => return Err(Undelivered::Pause(error)),
                Next::Fail => return Err(Undelivered::Fail(error)),
            },
        }
    }
}

/// Writes reshaped records to a partner. Each write carries an idempotency
/// key derived from the flow, the record's key and the data sent, so
/// delivering the same thing again after a crash never writes twice, while
/// a changed record (or a changed mapping) is written anew. Dead letters
/// keep the raw record (`raw`, by key), so a retry maps it again.
async fn deliver(
    flow: &FlowId,
    records: &[Record],
    raw: &[Record],
    connection: &Connection,
    stream: &str,
    links: &(impl IdLinks + ?Sized),
) -> Result<Delivered, DeliveryError> {
    let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
    let known = {
        let links = links.links(flow, &keys).map_err(DeliveryError::Store)?;
        links
            .into_iter()
            .map(|l| (l.source_key.clone(), l))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let mut requests = Vec::with_capacity(records.len());
    let mut sources = Vec::with_capacity(records.len());
    for record in records {
        let external_id = known.get(&record.key).map(|l| l.external_id.clone());
        if record.kind == ChangeKind::Delete && external_id.is_none() {
            continue; // never delivered, nothing to delete
        }
        requests.push(WriteRequest {
            data: record.data.clone(),
            external_id,
            kind: record.kind,
            idempotency_key: idempotency_key(flow, &record.key, &record.data),
        });
        sources.push(record);
    }
    if requests.is_empty() {
        return Ok(Delivered {
            links: vec![],
            dead_letters: vec![],
        });
    }
    let keys: Vec<String> = requests.iter().map(|r| r.idempotency_key.clone()).collect();
    let results = connection
        .write(stream, requests)
        .await
        .map_err(DeliveryError::Call)?;
    let mut delivered = Delivered {
        links: Vec::new(),
        dead_letters: Vec::new(),
    };
    for ((record, idempotency_key), result) in sources.into_iter().zip(keys).zip(results) {
        match result {
            Ok(written) => delivered.links.push(IdLink {
                source_key: record.key.clone(),
                external_id: written.external_id,
                version: written.version,
                idempotency_key,
            }),
            Err(
                error @ (ConnectorError::Permanent(_)
                | ConnectorError::Unsupported(_)
                | ConnectorError::Config(_)),
            ) => {
                let source = raw.iter().find(|r| r.key == record.key).unwrap_or(record);
                delivered.dead_letters.push(DeadLetter {
                    source_key: record.key.clone(),
                    version: record.version,
                    data: source.data.clone(),
                    failure: DeliveryFailure::Destination(error),
                })
            }
            // A rate limit or outage reported per record fails the page, to be
            // retried whole: the keys make the successful part harmless.
            Err(error) => {
                return Err(DeliveryError::Call(CallError::Connector {
                    plugin: connection.plugin().label(),
                    error,
                    denial: None,
                    hint: None,
                }));
            }
        }
    }
    Ok(delivered)
}

fn idempotency_key(flow: &FlowId, key: &str, data: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(flow.as_str());
    hash.update([0]);
    hash.update(key);
    hash.update([0]);
    hash.update(data);
    format!("weir-{}", hex::encode(&hash.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_follow_the_data_sent_and_the_flow() {
        let flow = FlowId::new("f").unwrap();
        let other = FlowId::new("g").unwrap();
        let a = idempotency_key(&flow, "k", "{\"a\":1}");
        assert_eq!(
            a,
            idempotency_key(&flow, "k", "{\"a\":1}"),
            "a redone write is recognised"
        );
        assert_ne!(
            a,
            idempotency_key(&flow, "k", "{\"a\":2}"),
            "a changed record is written anew"
        );
        assert_ne!(a, idempotency_key(&flow, "j", "{\"a\":1}"));
        assert_ne!(a, idempotency_key(&other, "k", "{\"a\":1}"));
    }
}
