//! Purging: payloads of done deliveries go after the retention; keys stay
//! for the (longer) key retention so that a partner's late retry is still
//! acknowledged as a duplicate instead of being processed twice. Failed
//! deliveries are kept: someone has to look at them.

use rusqlite::{Connection, params};

use super::writer::OpContext;

/// Rows removed per commit: a purge shares commits with ingress, so it
/// must never hold one up for long.
const CHUNK: i64 = 2_000;

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Done deliveries whose payload was removed.
    pub payloads: u64,
    /// Delivery keys forgotten.
    pub keys: u64,
}

/// One step of a purge.
pub(super) struct Chunk {
    pub payloads: u64,
    pub keys: u64,
    /// Whether a full chunk was removed, so there may be more.
    pub more: bool,
}

pub(super) fn purge_chunk(conn: &Connection, cx: &OpContext) -> rusqlite::Result<(Chunk, i64)> {
    let payloads = conn
        .prepare_cached(
            "DELETE FROM deliveries WHERE id IN (
                 SELECT id FROM deliveries WHERE state = 'done' AND finished_at_ms <= ?1
                 ORDER BY finished_at_ms LIMIT ?2)",
        )?
        .execute(params![
            cx.now_ms.saturating_sub(millis(cx.env.retention)),
            CHUNK
        ])?;
    // Never the key of a row still stored: it is what the unique index of
    // `deliveries` would answer with anyway, and keeping it keeps the
    // duplicate's id at hand.
    let keys = conn
        .prepare_cached(
            "DELETE FROM delivery_keys WHERE rowid IN (
                 SELECT k.rowid FROM delivery_keys k
                 WHERE k.first_seen_ms <= ?1
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = k.delivery_id)
                 ORDER BY k.first_seen_ms LIMIT ?2)",
        )?
        .execute(params![
            cx.now_ms.saturating_sub(millis(cx.env.key_retention)),
            CHUNK
        ])?;
    let chunk = Chunk {
        payloads: payloads as u64,
        keys: keys as u64,
        more: payloads as i64 == CHUNK || keys as i64 == CHUNK,
    };
    Ok((chunk, 0))
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
