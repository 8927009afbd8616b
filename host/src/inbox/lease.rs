//! Processing under leases: a worker claims deliveries for a while,
//! settles each one (done, or failed and due again later), and a claim
//! whose lease runs out is handed out again (at-least-once).
//!
//! These run on the writer's connection, inside its group commits: one
//! writer means claims never make ingress wait for SQLite's write lock (and
//! its sleeping busy handler), and settlements share the ingress `fsync`.

use std::time::Duration;

use bytes::Bytes;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::writer::OpContext;
use super::{DeliveryId, DeliveryKey, Headers};
use crate::ids::{ConnectionId, TenantId};

/// A delivery handed to a worker, with everything the partner sent.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// Its row.
    pub id: DeliveryId,
    /// The tenant it is for.
    pub tenant: TenantId,
    /// The connection it came in on.
    pub connection: ConnectionId,
    /// Its delivery key.
    pub key: DeliveryKey,
    /// When it was received, ms since the Unix epoch.
    pub received_at_ms: i64,
    /// The HTTP method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// The request headers, byte for byte.
    pub headers: Headers,
    /// The request body, byte for byte.
    pub body: Bytes,
    /// Which claim this is: 1 the first time.
    pub attempt: u32,
    /// When the claim runs out, ms since the Unix epoch.
    pub lease_until_ms: i64,
}

impl ClaimedDelivery {
    /// The token that renews or settles this claim.
    pub fn claim(&self) -> Claim {
        Claim {
            id: self.id,
            attempt: self.attempt,
        }
    }
}

/// One claim on a delivery, as a fencing token: renewing or settling with
/// it works only while it is the delivery's latest claim, so a worker whose
/// lease ran out cannot settle a delivery another worker has claimed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The delivery.
    pub id: DeliveryId,
    /// Which claim: the delivery's attempt count when it was handed out.
    pub attempt: u32,
}

/// What [`super::Inbox::fail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Pending again, due at this time (ms since the Unix epoch).
    Retry {
        /// When it may be claimed again.
        at_ms: i64,
    },
    /// The last attempt failed: the delivery is `failed` for good.
    GaveUp,
    /// It was not processing (its lease ran out and it moved on).
    NotClaimed,
}

const CLAIMED_COLUMNS: &str = "id, tenant, connection, delivery_key, received_at_ms, method, path, query, headers, body, attempts, lease_until_ms";

pub(super) fn claim(
    conn: &Connection,
    cx: &OpContext,
    limit: usize,
    lease: Duration,
) -> rusqlite::Result<(Vec<ClaimedDelivery>, i64)> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let until = cx.after(lease);
    // A claim that ran out on its last attempt: its worker died every
    // time, so handing it out again would only kill another one.
    let given_up = conn
        .prepare_cached(
            "UPDATE deliveries
             SET state = 'failed', finished_at_ms = ?1, lease_until_ms = NULL,
                 error = 'the lease ran out on the last attempt'
             WHERE state = 'processing' AND lease_until_ms <= ?1
               AND attempts - retried_after_attempts >= ?2",
        )?
        .execute(params![cx.now_ms, cx.env.max_attempts])?;
    // Expired leases first: they have waited longest.
    let mut claimed = take(
        conn,
        "SELECT id FROM deliveries WHERE state = 'processing' AND lease_until_ms <= ?1
         ORDER BY lease_until_ms LIMIT ?2",
        cx.now_ms,
        limit,
        until,
    )?;
    let left = limit - claimed.len() as i64;
    if left > 0 {
        claimed.extend(take(
            conn,
            "SELECT id FROM deliveries WHERE state = 'pending' AND available_at_ms <= ?1
             ORDER BY available_at_ms LIMIT ?2",
            cx.now_ms,
            left,
            until,
        )?);
    }
    claimed.sort_by_key(|delivery| delivery.id);
    Ok((claimed, -(given_up as i64)))
}

/// Marks the rows `select` finds processing until `until` and reads them.
fn take(
    conn: &Connection,
    select: &str,
    now_ms: i64,
    limit: i64,
    until: i64,
) -> rusqlite::Result<Vec<ClaimedDelivery>> {
    let sql = format!(
        "UPDATE deliveries SET state = 'processing', attempts = attempts + 1, lease_until_ms = ?3
         WHERE id IN ({select})
         RETURNING {CLAIMED_COLUMNS}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now_ms, limit, until], claimed_delivery)?;
    rows.collect()
}

fn claimed_delivery(row: &Row<'_>) -> rusqlite::Result<ClaimedDelivery> {
    let invalid = |index: usize, error: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, error)
    };
    let headers: Vec<u8> = row.get(8)?;
    let body: Vec<u8> = row.get(9)?;
    Ok(ClaimedDelivery {
        id: DeliveryId(row.get(0)?),
        tenant: TenantId::new(row.get::<_, String>(1)?).map_err(|e| invalid(1, e.into()))?,
        connection: ConnectionId::new(row.get::<_, String>(2)?)
            .map_err(|e| invalid(2, e.into()))?,
        key: DeliveryKey::new(row.get::<_, String>(3)?).map_err(|e| invalid(3, e.into()))?,
        received_at_ms: row.get(4)?,
        method: row.get(5)?,
        path: row.get(6)?,
        query: row.get(7)?,
        headers: Headers::decode(&headers)
            .ok_or_else(|| invalid(8, "the stored headers are damaged".into()))?,
        body: Bytes::from(body),
        attempt: row.get(10)?,
        lease_until_ms: row.get(11)?,
    })
}

/// Makes every lease run out now, so the next claim hands those deliveries
/// out again (counting the attempt, as for any lease that ran out).
pub(super) fn take_back(conn: &Connection, cx: &OpContext) -> rusqlite::Result<(usize, i64)> {
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET lease_until_ms = ?1
             WHERE state = 'processing' AND lease_until_ms > ?1",
        )?
        .execute(params![cx.now_ms])?;
    Ok((changed, 0))
}

pub(super) fn renew(
    conn: &Connection,
    cx: &OpContext,
    claim: Claim,
    lease: Duration,
) -> rusqlite::Result<(bool, i64)> {
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET lease_until_ms = ?3
             WHERE id = ?1 AND attempts = ?2 AND state = 'processing'",
        )?
        .execute(params![claim.id.0, claim.attempt, cx.after(lease)])?;
    Ok((changed == 1, 0))
}

pub(super) fn complete(
    conn: &Connection,
    cx: &OpContext,
    claim: Claim,
) -> rusqlite::Result<(bool, i64)> {
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries
             SET state = 'done', finished_at_ms = ?3, lease_until_ms = NULL, error = NULL
             WHERE id = ?1 AND attempts = ?2 AND state = 'processing'",
        )?
        .execute(params![claim.id.0, claim.attempt, cx.now_ms])?;
    Ok((changed == 1, -(changed as i64)))
}

pub(super) fn fail(
    conn: &Connection,
    cx: &OpContext,
    claim: Claim,
    error: &str,
    retry_after: Duration,
) -> rusqlite::Result<(FailOutcome, i64)> {
    let at_ms = cx.after(retry_after);
    let state: Option<String> = conn
        .prepare_cached(
            "UPDATE deliveries
             SET state = CASE WHEN attempts - retried_after_attempts >= ?2
                              THEN 'failed' ELSE 'pending' END,
                 finished_at_ms = CASE WHEN attempts - retried_after_attempts >= ?2
                                  THEN ?3 END,
                 available_at_ms = ?4, lease_until_ms = NULL, error = ?5
             WHERE id = ?1 AND attempts = ?6 AND state = 'processing'
             RETURNING state",
        )?
        .query_row(
            params![
                claim.id.0,
                cx.env.max_attempts,
                cx.now_ms,
                at_ms,
                error,
                claim.attempt
            ],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match state.as_deref() {
        None => (FailOutcome::NotClaimed, 0),
        Some("failed") => (FailOutcome::GaveUp, -1),
        Some(_) => (FailOutcome::Retry { at_ms }, 0),
    })
}
