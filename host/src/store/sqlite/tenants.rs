//! Tenants and the scheduler's view of their flows.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::error::json;
use super::runs::{RUN_COLUMNS, run_row};
use crate::ids::TenantId;
use crate::store::{FlowState, RunRecord, StoreError, TenantStore};
use crate::tenant::Tenant;

impl TenantStore for SqliteStore {
    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare("SELECT id, document FROM tenants ORDER BY id")?;
            stmt.query_map([], |row| {
                let id: String = row.get(0)?;
                json(1, || format!("tenant `{id}`"), &row.get::<_, String>(1)?)
            })?
            .collect()
        })
    }

    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT document FROM tenants WHERE id = ?1",
                params![id.as_str()],
                |row| json(0, || format!("tenant `{id}`"), &row.get::<_, String>(0)?),
            )
            .optional()
        })
    }

    fn save_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let doc = serde_json::to_string(tenant).expect("a tenant serializes");
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO tenants (id, document, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
                params![tenant.id.as_str(), doc, self.clock.now_ms()],
            )?;
            tx.execute("UPDATE tenants_generation SET generation = generation + 1", [])?;
            tx.commit()
        })
    }

    fn delete_tenant(&self, id: &TenantId) -> Result<bool, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let removed = tx.execute("DELETE FROM tenants WHERE id = ?1", params![id.as_str()])?;
            tx.execute(
                "DELETE FROM flow_states WHERE tenant = ?1",
                params![id.as_str()],
            )?;
            tx.execute(
                "UPDATE tenants_generation SET generation = generation + 1",
                [],
            )?;
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    fn tenants_generation(&self) -> Result<i64, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT generation FROM tenants_generation", [], |row| {
                row.get(0)
            })
        })
    }

    fn save_flow_states(&self, states: &[FlowState]) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM flow_states", [])?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO flow_states (flow, tenant, template, enabled, schedule, next_run_at, failures,
                       healthy, last_error, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for s in states {
                    insert.execute(params![
                        s.flow,
                        s.tenant,
                        s.template,
                        s.enabled,
                        s.schedule,
                        s.next_run_at_ms,
                        s.failures,
                        s.healthy,
                        s.last_error,
                        now
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn flow_states(&self) -> Result<Vec<FlowState>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT flow, tenant, template, enabled, schedule, next_run_at, failures, healthy, last_error
                 FROM flow_states ORDER BY flow",
            )?;
            stmt.query_map([], |row| {
                Ok(FlowState {
                    flow: row.get(0)?,
                    tenant: row.get(1)?,
                    template: row.get(2)?,
                    enabled: row.get(3)?,
                    schedule: row.get(4)?,
                    next_run_at_ms: row.get(5)?,
                    failures: row.get(6)?,
                    healthy: row.get(7)?,
                    last_error: row.get(8)?,
                })
            })?
            .collect()
        })
    }

    fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY flow) ORDER BY flow"
            ))?;
            stmt.query_map([], run_row)?.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::diagnostic::Diagnose;
    use crate::store::StoreErrorKind;
    use crate::store::sqlite::testing::open;

    #[test]
    fn a_tenant_that_does_not_decode_is_an_error_not_a_missing_tenant() {
        let (_dir, store) = open(Clock::system());
        let id = TenantId::new("customer-42").unwrap();
        store.save_tenant(&Tenant::new(id.clone())).unwrap();
        store
            .with(|c| c.execute("UPDATE tenants SET document = '{\"id\": 42}'", []))
            .unwrap();

        let error = store.tenant(&id).unwrap_err();
        assert_eq!(error.kind, StoreErrorKind::Corrupt);
        assert!(
            error
                .to_string()
                .contains("tenant `customer-42` does not decode"),
            "{error}"
        );
        let listed = store.tenants().unwrap_err();
        assert_eq!(
            listed.kind,
            StoreErrorKind::Corrupt,
            "not left out of the list"
        );
        assert!(
            listed
                .diagnostic()
                .hint
                .unwrap()
                .contains("restore a backup"),
            "a corrupt store is no full disk"
        );
    }
}
