//! Store calls made off the async runtime's workers: the store blocks.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::store::{FlowStore, StoreError};

/// The store a run uses.
#[derive(Clone)]
pub(super) struct StoreCalls(Arc<dyn FlowStore>);

impl StoreCalls {
    pub fn new(store: Arc<dyn FlowStore>) -> Self {
        Self(store)
    }

    /// The store itself, for calls that are cheap or already off the
    /// runtime.
    pub fn get(&self) -> &dyn FlowStore {
        self.0.as_ref()
    }

    /// Runs `f` on a blocking thread and waits for it.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn FlowStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        join(self.spawn(f)).await
    }

    /// Starts `f` on a blocking thread.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn FlowStore) -> Result<T, StoreError> + Send + 'static,
    ) -> JoinHandle<Result<T, StoreError>> {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
    }
}

/// Waits for a store call started with [`StoreCalls::spawn`].
pub(super) async fn join<T>(handle: JoinHandle<Result<T, StoreError>>) -> Result<T, StoreError> {
    handle.await.expect("store calls do not panic")
}
