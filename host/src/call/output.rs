//! What guests print (stdout, stderr) is kept up to a cap and then dropped,
//! never an error: a chatty guest must neither fill the host's memory nor
//! trap because a write failed.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: u64,
}

/// A capped in-memory output stream for a guest.
#[derive(Clone)]
pub struct CappedOutput {
    cap: usize,
    captured: Arc<Mutex<Captured>>,
}

impl CappedOutput {
    /// Keeps the first `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            captured: Arc::default(),
        }
    }

    /// What was kept, and how many bytes were dropped after the cap.
    pub fn contents(&self) -> (Vec<u8>, u64) {
        let captured = self.captured.lock().unwrap_or_else(|p| p.into_inner());
        (captured.kept.clone(), captured.dropped)
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut captured = self.captured.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.cap.saturating_sub(captured.kept.len());
        let kept = buf.len().min(room);
        captured.kept.extend_from_slice(&buf[..kept]);
        captured.dropped += (buf.len() - kept) as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn writes_past_the_cap_are_counted_and_dropped_without_error() {
        let output = CappedOutput::new(8);
        let mut writer = output.clone();
        writer.write_all(b"hello ").await.unwrap();
        writer.write_all(b"world, and more").await.unwrap();
        let (kept, dropped) = output.contents();
        assert_eq!(kept, b"hello wo");
        assert_eq!(dropped, 13);
    }
}
