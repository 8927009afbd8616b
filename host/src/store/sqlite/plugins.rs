//! The connector versions operators approved, and their rollbacks.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::error::json;
use crate::store::{ApprovedVersion, PluginLedger, PluginRollback, StoreError};

impl PluginLedger for SqliteStore {
    fn approved_versions(&self, name: &str) -> Result<Vec<ApprovedVersion>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(
                "SELECT name, version, content_hash, hosts, approved_at FROM plugin_versions
                 WHERE name = ?1 ORDER BY approved_at DESC, rowid DESC",
            )?
            .query_map(params![name], |row| {
                let content_hash: String = row.get(2)?;
                let hosts: String = row.get(3)?;
                Ok(ApprovedVersion {
                    name: row.get(0)?,
                    version: row.get(1)?,
                    hosts: json(
                        3,
                        || format!("the hosts of approved version `{content_hash}`"),
                        &hosts,
                    )?,
                    content_hash,
                    approved_at_ms: row.get(4)?,
                })
            })?
            .collect()
        })
    }

    fn approved_wasm(&self, content_hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT wasm FROM plugin_versions WHERE content_hash = ?1",
                params![content_hash],
                |row| row.get(0),
            )
            .optional()
        })
    }

    fn approve_version(
        &self,
        version: &ApprovedVersion,
        wasm: &[u8],
        keep: usize,
    ) -> Result<(), StoreError> {
        let hosts = serde_json::to_string(&version.hosts).expect("hosts serialize");
        self.with(|conn| {
            let tx = conn.transaction()?;
            // The wasm is written once; approving again only moves the time.
            tx.execute(
                "INSERT INTO plugin_versions (content_hash, name, version, hosts, wasm, approved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (content_hash) DO UPDATE SET approved_at = excluded.approved_at",
                params![
                    version.content_hash,
                    version.name,
                    version.version,
                    hosts,
                    wasm,
                    version.approved_at_ms
                ],
            )?;
            tx.execute(
                "DELETE FROM plugin_versions WHERE name = ?1 AND content_hash NOT IN (
                   SELECT content_hash FROM plugin_versions WHERE name = ?1
                   ORDER BY approved_at DESC, rowid DESC LIMIT ?2)",
                params![version.name, keep as i64],
            )?;
            tx.commit()
        })
    }

    fn rollback(&self, name: &str) -> Result<Option<PluginRollback>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT file_hash, serving FROM plugin_rollbacks WHERE name = ?1",
                params![name],
                |row| {
                    Ok(PluginRollback {
                        file_hash: row.get(0)?,
                        serving: row.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    fn set_rollback(
        &self,
        name: &str,
        rollback: Option<&PluginRollback>,
    ) -> Result<(), StoreError> {
        self.with(|conn| match rollback {
            None => conn
                .execute("DELETE FROM plugin_rollbacks WHERE name = ?1", params![name])
                .map(drop),
            Some(rollback) => conn
                .execute(
                    "INSERT INTO plugin_rollbacks (name, file_hash, serving) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET file_hash = excluded.file_hash, serving = excluded.serving",
                    params![name, rollback.file_hash, rollback.serving],
                )
                .map(drop),
        })
    }
}
