//! Changes merged from polls and webhooks, and webhook coverage.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::connector::{ChangeKind, Record};
use crate::ids::{ConnectionId, TenantId};
use crate::store::changes::{MergeDecision, StoredCopy, decide};
use crate::store::{ChangeSource, ChangeStore, Coverage, Handshake, MergeOutcome, StoreError};
use crate::unix_time::now_ms;

impl ChangeStore for SqliteStore {
    fn merge(
        &self,
        connection: &ConnectionId,
        stream: &str,
        records: &[Record],
        source: ChangeSource,
    ) -> Result<MergeOutcome, StoreError> {
        let now = now_ms();
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

    fn endpoint_token(&self, tenant: &TenantId, connection: &str) -> Result<String, StoreError> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let fresh = hex::encode(bytes);
        self.with(|conn| {
            conn.execute(
                "INSERT INTO webhook_endpoints (token, tenant, connection, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, connection) DO NOTHING",
                params![fresh, tenant.as_str(), connection, now_ms()],
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
    use crate::ids::FlowId;
    use crate::store::sqlite::testing::{commit_page_of_f, open};
    use crate::store::{RunLog, Sweep};

    fn record(key: &str, version: u64, kind: ChangeKind, data: &str) -> Record {
        Record {
            key: key.into(),
            version: Some(version),
            kind,
            data: data.into(),
        }
    }

    fn stored(store: &SqliteStore) -> (i64, bool, String) {
        store
            .with(|c| {
                c.query_row(
                    "SELECT version, deleted, data FROM records WHERE key = 'k'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .unwrap()
    }

    /// A poll: a page committed through the run path.
    fn poll(store: &SqliteStore, records: &[Record]) {
        commit_page_of_f(store, records, false, true, Sweep::Off);
    }

    fn webhook(store: &SqliteStore, records: &[Record]) -> MergeOutcome {
        store
            .merge(
                &ConnectionId::new("c").unwrap(),
                "s",
                records,
                ChangeSource::Webhook,
            )
            .unwrap()
    }

    #[test]
    fn a_webhook_v3_then_a_poll_v2_keeps_v3() {
        let (_dir, store) = open();
        assert_eq!(
            webhook(&store, &[record("k", 3, ChangeKind::Upsert, r#"{"v":3}"#)])
                .applied
                .len(),
            1
        );
        poll(&store, &[record("k", 2, ChangeKind::Upsert, r#"{"v":2}"#)]);
        assert_eq!(stored(&store), (3, false, r#"{"v":3}"#.into()));
    }

    #[test]
    fn a_poll_v2_then_a_late_webhook_v1_keeps_v2() {
        let (_dir, store) = open();
        poll(&store, &[record("k", 2, ChangeKind::Upsert, r#"{"v":2}"#)]);
        let outcome = webhook(&store, &[record("k", 1, ChangeKind::Upsert, r#"{"v":1}"#)]);
        assert_eq!((outcome.applied.len(), outcome.stale), (0, 1));
        assert_eq!(stored(&store).0, 2);
    }

    #[test]
    fn a_delete_v5_then_an_update_v4_stays_deleted() {
        let (_dir, store) = open();
        webhook(&store, &[record("k", 5, ChangeKind::Delete, "{}")]);
        webhook(&store, &[record("k", 4, ChangeKind::Upsert, r#"{"v":4}"#)]);
        poll(&store, &[record("k", 4, ChangeKind::Upsert, r#"{"v":4}"#)]);
        assert_eq!(
            stored(&store),
            (5, true, "{}".into()),
            "a late update cannot resurrect it"
        );
    }

    #[test]
    fn the_same_version_with_other_content_is_a_conflict_counted_and_kept() {
        let (_dir, store) = open();
        webhook(
            &store,
            &[record("k", 7, ChangeKind::Upsert, r#"{"a":1,"b":2}"#)],
        );
        let same = webhook(
            &store,
            &[record("k", 7, ChangeKind::Upsert, r#"{"b":2, "a":1}"#)],
        );
        assert_eq!(
            (same.conflicts, same.stale),
            (0, 1),
            "equal JSON is no conflict"
        );
        let other = webhook(&store, &[record("k", 7, ChangeKind::Upsert, r#"{"a":9}"#)]);
        assert_eq!((other.conflicts, other.applied.len()), (1, 1));
        assert_eq!(
            stored(&store).2,
            r#"{"a":9}"#,
            "the copy read last is stored"
        );
        let kept: (String, String) = store
            .with(|c| {
                c.query_row("SELECT kept, refused FROM merge_conflicts", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .unwrap();
        assert_eq!(kept, (r#"{"a":9}"#.into(), r#"{"a":1,"b":2}"#.into()));
    }

    #[test]
    fn a_poll_with_other_content_under_the_stored_version_is_a_counted_conflict_and_stored() {
        let (_dir, store) = open();
        let flow = FlowId::new("f").unwrap();
        let page = |data: &str| {
            commit_page_of_f(
                &store,
                &[record("k", 1, ChangeKind::Upsert, data)],
                false,
                false,
                Sweep::Off,
            )
        };
        page(r#"{"title":"old"}"#);
        let again = page(r#"{"title":"old"}"#);
        assert_eq!(
            (again.changed, again.conflicts),
            (0, 0),
            "a page read again"
        );
        let edited = page(r#"{"title":"new"}"#);
        assert_eq!((edited.changed, edited.conflicts), (1, 1));
        assert_eq!(stored(&store), (1, false, r#"{"title":"new"}"#.into()));
        let run = &store.runs(Some(&flow), 1).unwrap()[0];
        assert_eq!((run.records_written, run.conflicts), (1, 1));
        // A webhook bringing the old copy afterwards is one too, and wins
        // as the copy read last: the next poll settles it.
        let late = webhook(
            &store,
            &[record("k", 1, ChangeKind::Upsert, r#"{"title":"old"}"#)],
        );
        assert_eq!(late.conflicts, 1);
    }

    #[test]
    fn coverage_counts_changes_only_polls_found_after_the_grace_period() {
        let (_dir, store) = open();
        let connection = ConnectionId::new("c").unwrap();
        webhook(&store, &[record("a", 2, ChangeKind::Upsert, "{}")]);
        poll(
            &store,
            &[
                record("a", 2, ChangeKind::Upsert, "{}"),
                record("b", 2, ChangeKind::Upsert, "{}"),
            ],
        );
        let now = now_ms() + 10_000;
        let coverage = store.coverage(&connection, "s", 0, 1_000, now).unwrap();
        assert_eq!(
            (coverage.changes, coverage.poll_only, coverage.by_webhook),
            (2, 1, 1)
        );
        assert_eq!(coverage.coverage, Some(0.5));
        // A webhook arriving within the grace period after the poll is no miss.
        webhook(&store, &[record("b", 2, ChangeKind::Upsert, "{}")]);
        let coverage = store.coverage(&connection, "s", 0, 5_000, now).unwrap();
        assert_eq!((coverage.changes, coverage.poll_only), (2, 0));
    }
}
