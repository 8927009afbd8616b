//! The audit log of outbound requests and rate budget states.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::error::json;
use crate::capability::{AuditEntry, BudgetLeft, BudgetState};
use crate::ids::ConnectionId;
use crate::store::{EgressLog, StoreError};

impl EgressLog for SqliteStore {
    fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO http_audit (at, connection, method, origin, path, status, outcome, bytes_sent,
                       bytes_received, duration_ms, attempt, budget_tokens, budget_today)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?;
                for e in entries {
                    insert.execute(params![
                        e.at_ms,
                        e.connection,
                        e.method,
                        e.origin,
                        e.path,
                        e.status,
                        e.outcome.as_ref(),
                        e.bytes_sent as i64,
                        e.bytes_received as i64,
                        e.duration_ms as i64,
                        e.attempt,
                        e.budget.tokens,
                        e.budget.today.map(|t| t as i64),
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn audit(
        &self,
        connection: Option<&ConnectionId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT at, connection, method, origin, path, status, outcome, bytes_sent, bytes_received,
                        duration_ms, attempt, budget_tokens, budget_today
                 FROM http_audit WHERE ?1 IS NULL OR connection = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            stmt.query_map(params![connection.map(|c| c.as_str()), limit as i64], |row| {
                Ok(AuditEntry {
                    at_ms: row.get(0)?,
                    connection: row.get(1)?,
                    method: row.get(2)?,
                    origin: row.get(3)?,
                    path: row.get(4)?,
                    status: row.get(5)?,
                    outcome: row.get::<_, String>(6)?.into(),
                    bytes_sent: row.get::<_, i64>(7)? as u64,
                    bytes_received: row.get::<_, i64>(8)? as u64,
                    duration_ms: row.get::<_, i64>(9)? as u64,
                    attempt: row.get(10)?,
                    budget: BudgetLeft {
                        tokens: row.get(11)?,
                        today: row.get::<_, Option<i64>>(12)?.map(|t| t as u64),
                    },
                })
            })?
            .collect()
        })
    }

    fn save_budgets(&self, budgets: &[(ConnectionId, BudgetState)]) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO rate_budgets (connection, state, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (connection) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                )?;
                for (connection, state) in budgets {
                    let json = serde_json::to_string(state).expect("budget state serializes");
                    upsert.execute(params![connection.as_str(), json, self.clock.now_ms()])?;
                }
            }
            tx.commit()
        })
    }

    fn load_budget(&self, connection: &ConnectionId) -> Result<Option<BudgetState>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT state FROM rate_budgets WHERE connection = ?1",
                params![connection.as_str()],
                |row| {
                    let state: String = row.get(0)?;
                    json(0, || format!("the rate budget of `{connection}`"), &state)
                },
            )
            .optional()
        })
    }
}
