//! Inbox upkeep under `weir run`: payloads of processed deliveries are
//! dropped after their retention and delivery keys after theirs, so the
//! inbox stays the size of its recent traffic; the same pass recounts the
//! backlog that health reports, and forgets changes older than coverage
//! looks at.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Ingress;
use crate::store::CHANGES_KEPT;

/// How often the inbox is purged. Each pass works in small commits
/// shared with ingress, so a short interval costs little.
const EVERY: Duration = Duration::from_secs(60);

/// Purges the inbox at start and then every `EVERY` until `shutdown`.
pub async fn keep_inbox_tidy(ingress: Arc<Ingress>, shutdown: CancellationToken) {
    loop {
        match ingress.inbox().purge().await {
            Ok(purged) if purged.payloads + purged.keys > 0 => tracing::info!(
                payloads = purged.payloads,
                keys = purged.keys,
                "purged processed webhook deliveries past their retention"
            ),
            Ok(_) => {}
            Err(err) => tracing::warn!("cannot purge the webhook inbox, will try again: {err}"),
        }
        let store = ingress.store().clone();
        let forgotten = tokio::task::spawn_blocking(move || {
            let before = store.clock().now_ms() - CHANGES_KEPT.as_millis() as i64;
            store.forget_changes(before)
        })
        .await;
        match forgotten {
            Ok(Ok(0)) | Err(_) => {}
            Ok(Ok(n)) => tracing::debug!("forgot {n} change(s) older than coverage looks at"),
            Ok(Err(err)) => {
                tracing::warn!("cannot forget old changes of the change log, will try again: {err}")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
