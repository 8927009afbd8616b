//! What ends a run from outside the connector: a shutdown, and the flow's
//! `max_run_time`. Both end it at a page boundary: the work of the page in
//! flight (its calls, their requests and retry waits) is dropped at once,
//! so no request or call starts after the signal, and the run ends at its
//! last committed page, which the next run resumes from.

use std::future::Future;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::FlowConfig;
use crate::diagnostic::{Diagnostic, ErrorCode};

/// The bounds of one run.
pub(super) struct RunBounds<'a> {
    flow: &'a FlowConfig,
    cancel: Option<&'a CancellationToken>,
    deadline: Instant,
}

/// Why a run was ended from outside.
pub(super) enum Overrun {
    /// A shutdown asked it to stop.
    Shutdown,
    /// It reached its flow's `max_run_time`.
    Deadline(Diagnostic),
}

impl<'a> RunBounds<'a> {
    /// The bounds of a run of `flow` starting now.
    pub fn start(flow: &'a FlowConfig, cancel: Option<&'a CancellationToken>) -> Self {
        Self {
            flow,
            cancel,
            deadline: Instant::now() + flow.max_run_time,
        }
    }

    /// Whether the run may start another page.
    pub fn check(&self) -> Result<(), Overrun> {
        if self.cancel.is_some_and(CancellationToken::is_cancelled) {
            return Err(Overrun::Shutdown);
        }
        if Instant::now() >= self.deadline {
            return Err(self.deadline_passed());
        }
        Ok(())
    }

    /// Runs `work` unless a shutdown or the deadline comes first, in which
    /// case `work` is dropped where it stands.
    pub async fn within<T, E: From<Overrun>>(
        &self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let shutdown = async {
            match self.cancel {
                Some(cancel) => cancel.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // A shutdown wins over work that happens to finish at once.
            biased;
            () = shutdown => Err(Overrun::Shutdown.into()),
            () = tokio::time::sleep_until(self.deadline) => Err(self.deadline_passed().into()),
            done = work => done,
        }
    }

    fn deadline_passed(&self) -> Overrun {
        let limit = humantime::format_duration(self.flow.max_run_time);
        Overrun::Deadline(
            Diagnostic::new(
                ErrorCode::RunDeadline,
                format!(
                    "flow `{}` was still reading stream `{}` after {limit}, its `max_run_time`; the run stopped at its last committed page",
                    self.flow.id, self.flow.stream
                ),
            )
            .with_hint(format!(
                "the next run resumes from there; if a read legitimately takes longer, raise `max_run_time` of the flow in weir.toml (now \"{limit}\")"
            )),
        )
    }
}
