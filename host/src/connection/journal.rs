//! Writes the audit log and budget states in the background, in batches,
//! so that recording a request never waits for the disk. Above the store,
//! which only persists what it is given.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::capability::{AuditEntry, AuditSink, BudgetRegistry};
use crate::store::{EgressLog, StoreError};

/// Most entries written in one transaction.
const BATCH: usize = 1_000;

enum Message {
    Entry(AuditEntry),
    Flush(oneshot::Sender<()>),
}

/// The background writer of egress records.
pub struct Journal {
    tx: mpsc::UnboundedSender<Message>,
}

impl Journal {
    /// Starts the writer on the current async runtime. Every batch also
    /// saves the state of every budget in `budgets`.
    pub fn start(store: Arc<dyn EgressLog>, budgets: Arc<BudgetRegistry>) -> Arc<Self> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut entries = Vec::new();
                let mut flushes = Vec::new();
                let mut next = Some(first);
                while let Some(message) = next.take() {
                    match message {
                        Message::Entry(entry) => entries.push(entry),
                        Message::Flush(done) => flushes.push(done),
                    }
                    if entries.len() < BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                let states: Vec<_> = budgets
                    .all()
                    .into_iter()
                    .map(|(c, b)| (c, b.snapshot()))
                    .collect();
                let store = store.clone();
                let written = tokio::task::spawn_blocking(move || {
                    if !entries.is_empty() {
                        store.append_audit(&entries)?;
                    }
                    if !states.is_empty() {
                        store.save_budgets(&states)?;
                    }
                    Ok::<_, StoreError>(())
                })
                .await;
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => tracing::warn!("cannot write the HTTP audit log: {err}"),
                    Err(err) => tracing::warn!("the HTTP audit writer failed: {err}"),
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        Arc::new(Self { tx })
    }

    /// Waits until everything recorded so far is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl AuditSink for Journal {
    fn record(&self, entry: AuditEntry) {
        let _ = self.tx.send(Message::Entry(entry));
    }
}
