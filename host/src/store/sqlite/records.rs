//! The local copy of records, reshaped records, dead letters and id links.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::contract::{ChangeKind, ConnectorError, Record};
use crate::ids::{ConnectionId, FlowId, RunId};
use crate::store::{
    DeadLetter, DeadLetterRecord, Deliveries, DeliveryFailure, IdLink, IdLinks, RecordReader,
    StoreError,
};

impl RecordReader for SqliteStore {
    fn scan(
        &self,
        connection: &ConnectionId,
        stream: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.key, r.version, r.deleted, r.data FROM records r JOIN streams s ON s.id = r.stream_id
                 WHERE s.connection = ?1 AND s.name = ?2 AND r.key > ?3 ORDER BY r.key LIMIT ?4",
            )?;
            stmt.query_map(
                params![connection.as_str(), stream, after.unwrap_or(""), limit as i64],
                record_row,
            )?
            .collect()
        })
    }

    fn records_by_key(
        &self,
        connection: &ConnectionId,
        stream: &str,
        keys: &[&str],
    ) -> Result<Vec<Record>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.key, r.version, r.deleted, r.data FROM records r JOIN streams s ON s.id = r.stream_id
                 WHERE s.connection = ?1 AND s.name = ?2 AND r.key = ?3",
            )?;
            let mut records = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(record) = stmt
                    .query_row(params![connection.as_str(), stream, key], record_row)
                    .optional()?
                {
                    records.push(record);
                }
            }
            Ok(records)
        })
    }

    fn count(&self, connection: &ConnectionId, stream: &str) -> Result<u64, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT count(*) FROM records r JOIN streams s ON s.id = r.stream_id
                 WHERE s.connection = ?1 AND s.name = ?2 AND r.deleted = 0",
                params![connection.as_str(), stream],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
    }
}

impl IdLinks for SqliteStore {
    fn links(&self, flow: &FlowId, keys: &[&str]) -> Result<Vec<IdLink>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT source_key, external_id, version, idempotency_key FROM id_links
                 WHERE flow = ?1 AND source_key = ?2",
            )?;
            let mut links = Vec::new();
            for key in keys {
                if let Some(link) = stmt
                    .query_row(params![flow.as_str(), key], |row| {
                        Ok(IdLink {
                            source_key: row.get(0)?,
                            external_id: row.get(1)?,
                            version: row.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                            idempotency_key: row.get(3)?,
                        })
                    })
                    .optional()?
                {
                    links.push(link);
                }
            }
            Ok(links)
        })
    }
}

impl Deliveries for SqliteStore {
    fn redeliver(
        &self,
        flow: &FlowId,
        run: RunId,
        mapped: &[Record],
        links: &[IdLink],
        failed: &[DeadLetter],
        resolved: &[i64],
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        self.with(|conn| {
            let tx = conn.transaction()?;
            replace_mapped(&tx, flow, mapped, now)?;
            upsert_links(&tx, flow, links, now)?;
            {
                let mut remove =
                    tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1 AND flow = ?2")?;
                for id in resolved {
                    remove.execute(params![id, flow.as_str()])?;
                }
            }
            insert_dead_letters(&tx, flow, run, failed, now)?;
            tx.prepare_cached(
                "UPDATE runs SET pages = pages + 1, records_read = records_read + ?2,
                   records_written = records_written + ?3, records_failed = records_failed + ?4,
                   committed_at = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                run.0,
                (mapped.len().max(links.len()) + failed.len()) as i64,
                mapped.len().max(links.len()) as i64,
                failed.len() as i64,
                now
            ])?;
            tx.commit()
        })
    }

    fn dead_letters(
        &self,
        flow: &FlowId,
        limit: usize,
    ) -> Result<Vec<DeadLetterRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, flow, run_id, source_key, stage, error, data, created_at, version
                 FROM dead_letters WHERE flow = ?1 ORDER BY id LIMIT ?2",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            stmt.query_map(params![flow.as_str(), limit], |row| {
                Ok(DeadLetterRecord {
                    id: row.get(0)?,
                    flow: row.get(1)?,
                    run: RunId(row.get(2)?),
                    source_key: row.get(3)?,
                    version: row.get::<_, Option<i64>>(8)?.map(|v| v as u64),
                    stage: row.get(4)?,
                    error: row.get(5)?,
                    data: row.get(6)?,
                    created_at_ms: row.get(7)?,
                })
            })?
            .collect()
        })
    }

    fn mapped(
        &self,
        flow: &FlowId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT key, version, deleted, data FROM mapped_records
                 WHERE flow = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
            )?;
            stmt.query_map(
                params![flow.as_str(), after.unwrap_or(""), limit as i64],
                record_row,
            )?
            .collect()
        })
    }
}

pub(super) fn replace_mapped(
    tx: &rusqlite::Transaction<'_>,
    flow: &FlowId,
    records: &[Record],
    now: i64,
) -> rusqlite::Result<()> {
    // The same version is reshaped again (a changed mapping); an older one
    // never replaces a newer one (a reapply racing a sync of the flow).
    let mut upsert = tx.prepare_cached(
        "INSERT INTO mapped_records (flow, key, version, deleted, data, mapped_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (flow, key) DO UPDATE SET version = excluded.version, deleted = excluded.deleted,
           data = excluded.data, mapped_at = excluded.mapped_at
         WHERE excluded.version IS NULL OR mapped_records.version IS NULL
            OR excluded.version >= mapped_records.version",
    )?;
    for record in records {
        upsert.execute(params![
            flow.as_str(),
            record.key,
            record.version.map(|v| v as i64),
            record.kind == ChangeKind::Delete,
            record.data,
            now
        ])?;
    }
    Ok(())
}

pub(super) fn upsert_links(
    tx: &rusqlite::Transaction<'_>,
    flow: &FlowId,
    links: &[IdLink],
    now: i64,
) -> rusqlite::Result<()> {
    let mut link = tx.prepare_cached(
        "INSERT INTO id_links (flow, source_key, external_id, version, idempotency_key, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (flow, source_key) DO UPDATE SET
           external_id = excluded.external_id, version = excluded.version,
           idempotency_key = excluded.idempotency_key, updated_at = excluded.updated_at",
    )?;
    for l in links {
        link.execute(params![
            flow.as_str(),
            l.source_key,
            l.external_id,
            l.version.map(|v| v as i64),
            l.idempotency_key,
            now
        ])?;
    }
    Ok(())
}

pub(super) fn insert_dead_letters(
    tx: &rusqlite::Transaction<'_>,
    flow: &FlowId,
    run: RunId,
    dead_letters: &[DeadLetter],
    now: i64,
) -> rusqlite::Result<()> {
    let mut dead = tx.prepare_cached(
        "INSERT INTO dead_letters (flow, run_id, source_key, data, error_kind, error, created_at, stage, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for d in dead_letters {
        let kind = match &d.failure {
            DeliveryFailure::Mapping(_) => "mapping",
            DeliveryFailure::Transform(e) | DeliveryFailure::Destination(e) => error_kind(e),
        };
        dead.execute(params![
            flow.as_str(),
            run.0,
            d.source_key,
            d.data,
            kind,
            d.failure.reason(),
            now,
            d.failure.stage(),
            d.version.map(|v| v as i64)
        ])?;
    }
    Ok(())
}

pub(super) fn record_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        key: row.get(0)?,
        version: row.get::<_, Option<i64>>(1)?.map(|v| v as u64),
        kind: if row.get::<_, bool>(2)? {
            ChangeKind::Delete
        } else {
            ChangeKind::Upsert
        },
        data: row.get(3)?,
    })
}

fn error_kind(error: &ConnectorError) -> &'static str {
    match error {
        ConnectorError::Config(_) => "config",
        ConnectorError::Auth(_) => "auth",
        ConnectorError::Denied(_) => "denied",
        ConnectorError::RateLimited { .. } => "rate-limited",
        ConnectorError::Transient(_) => "transient",
        ConnectorError::Permanent(_) => "permanent",
        ConnectorError::Unsupported(_) => "unsupported",
    }
}
