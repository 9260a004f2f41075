//! Capture of a guest's stdout and stderr.
//!
//! Guest output never reaches the host's terminal: it is buffered here and
//! turned into run log lines at step boundaries (where replay knows whether
//! the text is new or a repeat), up to a byte budget per activation.

use bytes::Bytes;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Default)]
struct Buffer {
    pending: Vec<u8>,
    /// Bytes accepted this activation, dropped ones included.
    written: usize,
    truncated: bool,
}

/// One captured stream. Clones share the buffer.
#[derive(Clone)]
pub struct OutputCapture {
    buffer: Arc<Mutex<Buffer>>,
    budget: usize,
}

impl OutputCapture {
    pub fn new(budget: usize) -> Self {
        Self {
            buffer: Arc::default(),
            budget,
        }
    }

    /// Takes the text written since the last call, and whether some of it
    /// was dropped for exceeding the budget.
    pub fn take(&self) -> (Vec<u8>, bool) {
        match self.buffer.lock() {
            Ok(mut b) => {
                let truncated = std::mem::take(&mut b.truncated);
                (std::mem::take(&mut b.pending), truncated)
            }
            Err(_) => (Vec::new(), false),
        }
    }

    /// Starts the budget afresh: a parked guest's new leg is a new
    /// activation.
    pub fn renew_budget(&self) {
        if let Ok(mut b) = self.buffer.lock() {
            b.written = 0;
        }
    }

    fn accept(&self, bytes: &[u8]) {
        if let Ok(mut b) = self.buffer.lock() {
            let room = self.budget.saturating_sub(b.written);
            let keep = bytes.len().min(room);
            b.pending.extend(bytes.iter().take(keep));
            b.written += bytes.len();
            if keep < bytes.len() {
                b.truncated = true;
            }
        }
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Output over budget is dropped, not refused: a chatty guest must
        // not fail (or block) because of its logging.
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
