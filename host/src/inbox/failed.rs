//! Deliveries given up on after their last attempt: listing them, and
//! handing them back to the workers once the cause is fixed (a connector
//! upgraded, a partner back up). Works on the inbox file directly, so the
//! CLI can do it while `weir run` serves: SQLite serializes the writes, and
//! the daemon's next claim finds the deliveries pending again.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

use super::{DeliveryId, InboxError, InboxOptions, schema};
use crate::ids::TenantId;

/// A delivery given up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDelivery {
    /// Its row.
    pub id: DeliveryId,
    /// The tenant it is for.
    pub tenant: String,
    /// The connection it came in on.
    pub connection: String,
    /// Its delivery key.
    pub key: String,
    /// When it was received, ms since the Unix epoch.
    pub received_at_ms: i64,
    /// Claims it has had.
    pub attempts: u32,
    /// When it was given up, ms since the Unix epoch.
    pub failed_at_ms: Option<i64>,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// Which failed deliveries to act on.
#[derive(Debug, Clone, Default)]
pub struct FailedFilter {
    /// Only this tenant's.
    pub tenant: Option<TenantId>,
    /// Only these; all when empty.
    pub ids: Vec<DeliveryId>,
}

impl FailedFilter {
    /// A `WHERE` clause over `deliveries` and its parameters.
    fn clause(&self) -> (String, Vec<rusqlite::types::Value>) {
        let mut sql = String::from("state = 'failed'");
        let mut values = Vec::new();
        if let Some(tenant) = &self.tenant {
            sql.push_str(" AND tenant = ?");
            values.push(tenant.as_str().to_string().into());
        }
        if !self.ids.is_empty() {
            let marks = vec!["?"; self.ids.len()].join(", ");
            sql.push_str(&format!(" AND id IN ({marks})"));
            values.extend(self.ids.iter().map(|id| id.0.into()));
        }
        (sql, values)
    }
}

/// Failed deliveries of the inbox at `path`, oldest first, at most
/// `limit`; none if there is no inbox there yet.
pub fn failed(
    path: &Path,
    filter: &FailedFilter,
    limit: usize,
) -> Result<Vec<FailedDelivery>, InboxError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let err = |source| InboxError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = schema::open_reader(path).map_err(err)?;
    let (clause, mut values) = filter.clause();
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    let sql = format!(
        "SELECT id, tenant, connection, delivery_key, received_at_ms, attempts, finished_at_ms, error
         FROM deliveries WHERE {clause} ORDER BY received_at_ms, id LIMIT ?"
    );
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    let rows = stmt
        .query_map(params_from_iter(values), |row| {
            Ok(FailedDelivery {
                id: DeliveryId(row.get(0)?),
                tenant: row.get(1)?,
                connection: row.get(2)?,
                key: row.get(3)?,
                received_at_ms: row.get(4)?,
                attempts: row.get(5)?,
                failed_at_ms: row.get(6)?,
                error: row.get(7)?,
            })
        })
        .map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

/// Makes the failed deliveries `filter` picks pending again, due now,
/// each with a fresh set of attempts; returns how many. The daemon's
/// workers process them at their next claim.
pub fn retry_failed(path: &Path, filter: &FailedFilter) -> Result<u64, InboxError> {
    if !path.exists() {
        return Ok(0);
    }
    let options = InboxOptions {
        // The daemon's writer holds the lock for one commit at a time.
        busy_timeout: Duration::from_secs(10),
        ..InboxOptions::default()
    };
    let conn = schema::open_writer(path, &options)?;
    retry(&conn, filter).map_err(|source| InboxError::Open {
        path: path.to_path_buf(),
        source,
    })
}

fn retry(conn: &Connection, filter: &FailedFilter) -> rusqlite::Result<u64> {
    let (clause, values) = filter.clause();
    // Due since receipt: oldest first among what is due, whatever the
    // daemon's clock says.
    let sql = format!(
        "UPDATE deliveries
         SET state = 'pending', available_at_ms = received_at_ms, finished_at_ms = NULL,
             retried_after_attempts = attempts
         WHERE {clause}"
    );
    let changed = conn.execute(&sql, params_from_iter(values))?;
    Ok(changed as u64)
}
