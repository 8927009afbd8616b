//! Admission: the bounded queue between callers and the writer.
//!
//! Two lanes under one lock: deliveries (bounded, refused when full) and
//! processing operations (claims, settlements, purges: bounded in practice
//! by the workers awaiting them). The writer takes everything queued at
//! once, so a whole burst becomes one commit; a `Mutex` + `Condvar` rather
//! than a channel lets it wait on both lanes and swap a lane out in one
//! step instead of receiving item by item.

use std::sync::{Condvar, Mutex, MutexGuard};

use super::writer::{Op, Submit};

/// Operations taken per commit at most, so that a flood of settlements
/// never makes an ingress commit long.
const MAX_OPS_PER_BATCH: usize = 256;

/// Why a delivery was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    Full,
    Closed,
}

pub(super) struct Queue {
    capacity: usize,
    lanes: Mutex<Lanes>,
    wake: Condvar,
}

#[derive(Default)]
struct Lanes {
    submits: Vec<Submit>,
    ops: Vec<Op>,
    closed: bool,
    /// Whether the writer sleeps on `wake`: callers skip the wake-up
    /// syscall while it is busy committing.
    writer_waiting: bool,
}

/// What the writer took: everything queued at that moment.
#[derive(Default)]
pub(super) struct Batch {
    pub submits: Vec<Submit>,
    pub ops: Vec<Op>,
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            lanes: Mutex::default(),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a delivery unless the queue is full or closed; never waits
    /// for room.
    pub fn try_submit(&self, submit: Submit) -> Result<(), Admission> {
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(Admission::Closed);
        }
        if lanes.submits.len() >= self.capacity {
            return Err(Admission::Full);
        }
        lanes.submits.push(submit);
        self.wake_writer(lanes);
        Ok(())
    }

    /// Queues a processing operation; refused only once closed.
    pub fn push_op(&self, op: Op) -> Result<(), Op> {
        let mut lanes = self.lock();
        if lanes.closed {
            return Err(op);
        }
        lanes.ops.push(op);
        self.wake_writer(lanes);
        Ok(())
    }

    fn wake_writer(&self, mut lanes: MutexGuard<'_, Lanes>) {
        if lanes.writer_waiting {
            lanes.writer_waiting = false;
            drop(lanes);
            self.wake.notify_one();
        }
    }

    /// Waits until something is queued, then moves all queued deliveries
    /// (and up to `MAX_OPS_PER_BATCH` operations) into `batch`, which must
    /// be empty. False once the queue is closed and drained.
    pub fn take(&self, batch: &mut Batch) -> bool {
        debug_assert!(batch.submits.is_empty() && batch.ops.is_empty());
        let mut lanes = self.lock();
        while lanes.submits.is_empty() && lanes.ops.is_empty() {
            if lanes.closed {
                return false;
            }
            lanes.writer_waiting = true;
            lanes = self.wake.wait(lanes).unwrap_or_else(|p| p.into_inner());
        }
        // Swapping keeps both vectors' allocations in use: no allocation
        // per batch once warmed up.
        std::mem::swap(&mut lanes.submits, &mut batch.submits);
        if lanes.ops.len() <= MAX_OPS_PER_BATCH {
            std::mem::swap(&mut lanes.ops, &mut batch.ops);
        } else {
            batch.ops.extend(lanes.ops.drain(..MAX_OPS_PER_BATCH));
        }
        true
    }

    /// Refuses everything from now on; what is queued is still taken.
    pub fn close(&self) {
        let mut lanes = self.lock();
        lanes.closed = true;
        lanes.writer_waiting = false;
        drop(lanes);
        self.wake.notify_all();
    }

    /// Deliveries queued and not yet taken by the writer.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.lock().submits.len()
    }
}
