//! Changes merged from polls and webhooks, and webhook coverage.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::contract::{ChangeKind, Record};
use crate::ids::{ConnectionId, TenantId};
use crate::store::changes::{MergeDecision, StoredCopy, decide};
use crate::store::{ChangeSource, ChangeStore, Coverage, Handshake, MergeOutcome, StoreError};

/// Change-log rows deleted per commit.
const FORGET_BATCH: usize = 5_000;

impl ChangeStore for SqliteStore {
    fn merge(
        &self,
        connection: &ConnectionId,
        stream: &str,
        records: &[Record],
        source: ChangeSource,
    ) -> Result<MergeOutcome, StoreError> {
        let now = self.clock.now_ms();
        self.with(|conn| {
            let tx = conn.transaction()?;
            let merged = self.merge_records(&tx, connection, stream, records, now)?;
            log_changes(&tx, connection, stream, records, source, now)?;
            tx.commit()?;
            Ok(MergeOutcome {
                applied: merged
                    .applied
                    .into_iter()
                    .map(|i| records[i].clone())
                    .collect(),
                stale: merged.stale,
                conflicts: merged.conflicts,
            })
        })
    }

    fn coverage(
        &self,
        connection: &ConnectionId,
        stream: &str,
        since_ms: i64,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<Coverage, StoreError> {
        let decided_before = now_ms - grace_ms;
        self.with(|conn| {
            let (changes, by_webhook): (i64, i64) = conn.query_row(
                "SELECT count(*), coalesce(sum(webhook), 0) FROM (
                   SELECT key, version, max(via = 'webhook') AS webhook FROM change_log
                   WHERE connection = ?1 AND stream = ?2 AND seen_at >= ?3 AND seen_at <= ?4
                   GROUP BY key, version)",
                params![connection.as_str(), stream, since_ms, decided_before],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            // A poll's change is covered by a webhook of that version or a
            // newer one, before the poll or within the grace period after it.
            let poll_only: i64 = conn.query_row(
                "SELECT count(*) FROM (SELECT DISTINCT p.key, p.version FROM change_log p
                 WHERE p.connection = ?1 AND p.stream = ?2 AND p.via = 'poll'
                   AND p.seen_at >= ?3 AND p.seen_at <= ?4
                   AND NOT EXISTS (
                     SELECT 1 FROM change_log w WHERE w.connection = p.connection AND w.stream = p.stream
                       AND w.key = p.key AND w.via = 'webhook'
                       AND coalesce(w.version, 0) >= coalesce(p.version, 0)
                       AND w.seen_at <= p.seen_at + ?5))",
                params![connection.as_str(), stream, since_ms, decided_before, grace_ms],
                |r| r.get(0),
            )?;
            let last = |via: &str| -> rusqlite::Result<Option<i64>> {
                conn.query_row(
                    "SELECT max(seen_at) FROM change_log WHERE connection = ?1 AND stream = ?2 AND via = ?3",
                    params![connection.as_str(), stream, via],
                    |r| r.get(0),
                )
            };
            let conflicts: i64 = conn.query_row(
                "SELECT count(*) FROM merge_conflicts WHERE connection = ?1 AND stream = ?2 AND seen_at >= ?3",
                params![connection.as_str(), stream, since_ms],
                |r| r.get(0),
            )?;
            Ok(Coverage {
                changes: changes as u64,
                poll_only: poll_only as u64,
                by_webhook: by_webhook as u64,
                coverage: (changes > 0).then(|| 1.0 - poll_only as f64 / changes as f64),
                last_webhook_at_ms: last("webhook")?,
                last_poll_change_at_ms: last("poll")?,
                conflicts: conflicts as u64,
            })
        })
    }

    fn forget_changes(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut forgotten = 0;
        loop {
            let deleted = self.with(|conn| {
                conn.prepare_cached(
                    "DELETE FROM change_log WHERE rowid IN
                       (SELECT rowid FROM change_log WHERE seen_at < ?1 LIMIT ?2)",
                )?
                .execute(params![before_ms, FORGET_BATCH])
            })?;
            forgotten += deleted as u64;
            if deleted < FORGET_BATCH {
                return Ok(forgotten);
            }
        }
    }

    fn endpoint_token(&self, tenant: &TenantId, connection: &str) -> Result<String, StoreError> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let fresh = hex::encode(bytes);
        self.with(|conn| {
            conn.execute(
                "INSERT INTO webhook_endpoints (token, tenant, connection, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, connection) DO NOTHING",
                params![fresh, tenant.as_str(), connection, self.clock.now_ms()],
            )?;
            conn.query_row(
                "SELECT token FROM webhook_endpoints WHERE tenant = ?1 AND connection = ?2",
                params![tenant.as_str(), connection],
                |r| r.get(0),
            )
        })
    }

    fn endpoints(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.with(|conn| {
            let mut stmt =
                conn.prepare("SELECT token, tenant, connection FROM webhook_endpoints")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
    }

    fn record_handshake(&self, handshake: &Handshake) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO webhook_handshakes (tenant, connection, method, path, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    handshake.tenant.as_str(),
                    handshake.connection,
                    handshake.method,
                    handshake.path,
                    handshake.at_ms
                ],
            )
            .map(drop)
        })
    }

    fn handshakes(
        &self,
        tenant: &TenantId,
        connection: &str,
        since_ms: i64,
    ) -> Result<(u64, Option<i64>), StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT count(*), max(at_ms) FROM webhook_handshakes
                 WHERE tenant = ?1 AND connection = ?2 AND at_ms >= ?3",
                params![tenant.as_str(), connection, since_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }
}

impl SqliteStore {
    /// Merges records into a stream by [`decide`], the one rule of polls and
    /// webhooks; conflicts are kept in `merge_conflicts`.
    pub(super) fn merge_records(
        &self,
        tx: &rusqlite::Transaction<'_>,
        connection: &ConnectionId,
        stream: &str,
        records: &[Record],
        now: i64,
    ) -> rusqlite::Result<Merged> {
        let stream_id = self.stream_id(tx, connection.as_str(), stream)?;
        let mut stored = tx.prepare_cached(
            "SELECT version, deleted, data FROM records WHERE stream_id = ?1 AND key = ?2",
        )?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO records (stream_id, key, version, deleted, data, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (stream_id, key) DO UPDATE SET
               version = excluded.version, deleted = excluded.deleted,
               data = excluded.data, stored_at = excluded.stored_at",
        )?;
        let mut conflict = tx.prepare_cached(
            "INSERT INTO merge_conflicts (connection, stream, key, version, kept, refused, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut merged = Merged::default();
        for (index, record) in records.iter().enumerate() {
            let current: Option<(Option<i64>, bool, String)> = stored
                .query_row(params![stream_id, record.key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let copy = current.as_ref().map(|(version, deleted, data)| StoredCopy {
                version: version.map(|v| v as u64),
                deleted: *deleted,
                data,
            });
            let apply = match decide(copy, record) {
                MergeDecision::Apply => true,
                MergeDecision::Stale => {
                    merged.stale += 1;
                    false
                }
                MergeDecision::Conflict { replace } => {
                    merged.conflicts += 1;
                    let stored_data = copy.map_or("", |c| c.data);
                    let (kept, refused) = if replace {
                        (record.data.as_str(), stored_data)
                    } else {
                        (stored_data, record.data.as_str())
                    };
                    conflict.execute(params![
                        connection.as_str(),
                        stream,
                        record.key,
                        record.version.map(|v| v as i64),
                        kept,
                        refused,
                        now
                    ])?;
                    replace
                }
            };
            if apply {
                upsert.execute(params![
                    stream_id,
                    record.key,
                    record.version.map(|v| v as i64),
                    record.kind == ChangeKind::Delete,
                    record.data,
                    now
                ])?;
                merged.applied.push(index);
            }
        }
        Ok(merged)
    }
}

/// What [`SqliteStore::merge_records`] did.
#[derive(Default)]
pub(super) struct Merged {
    /// Indexes of the records now stored.
    pub(super) applied: Vec<usize>,
    pub(super) stale: u64,
    pub(super) conflicts: u64,
}

pub(super) fn log_changes(
    tx: &rusqlite::Transaction<'_>,
    connection: &ConnectionId,
    stream: &str,
    records: &[Record],
    via: ChangeSource,
    now: i64,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO change_log (connection, stream, key, version, via, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for record in records {
        insert.execute(params![
            connection.as_str(),
            stream,
            record.key,
            record.version.map(|v| v as i64),
            via.as_str(),
            now
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::sqlite::testing::open;

    #[test]
    fn a_conflict_keeps_the_stored_and_the_refused_copy_for_operators() {
        let (_dir, store) = open(Clock::system());
        let connection = ConnectionId::new("c").unwrap();
        let copy = |data: &str| Record {
            key: "k".into(),
            version: Some(7),
            kind: ChangeKind::Upsert,
            data: data.into(),
        };
        let merge = |data| {
            store
                .merge(&connection, "s", &[copy(data)], ChangeSource::Webhook)
                .unwrap()
        };
        merge(r#"{"a":1}"#);
        assert_eq!(merge(r#"{"a":9}"#).conflicts, 1);
        let kept: (String, String) = store
            .with(|c| {
                c.query_row("SELECT kept, refused FROM merge_conflicts", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .unwrap();
        assert_eq!(kept, (r#"{"a":9}"#.into(), r#"{"a":1}"#.into()));
    }
}
