//! Memory and table limits for one guest instance.

use crate::model::{ErrorCode, ErrorInfo};
use wasmtime::ResourceLimiter;

/// Caps linear memory and remembers whether the cap was hit, so a guest that
/// dies after a refused `memory.grow` (Rust aborts, JS throws) is reported as
/// `memory_limit` rather than as an anonymous trap.
pub struct GuestLimiter {
    memory_bytes: usize,
    hit: bool,
    /// The largest memory the guest grew to: what keeping it costs.
    grown_to: usize,
}

/// Table elements allowed per table; generous for any language runtime.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl GuestLimiter {
    pub fn new(memory_bytes: usize) -> Self {
        Self {
            memory_bytes,
            hit: false,
            grown_to: 0,
        }
    }

    /// The guest's linear memory, as large as it grew.
    pub fn memory_used(&self) -> usize {
        self.grown_to
    }

    /// Whether the guest asked for more memory than allowed.
    pub fn memory_limit_hit(&self) -> bool {
        self.hit
    }

    /// The error a guest returned, as the host reports it. JavaScript and
    /// Python turn a refused `memory.grow` into an exception the guest may
    /// let escape as its own failure; once the limit was hit, that failure
    /// is the memory limit's. `who` names the guest ("the workflow", "the
    /// RPC") in the message.
    pub fn attribute(&self, error: ErrorInfo, who: &str) -> ErrorInfo {
        if !self.hit {
            return error;
        }
        // The guest's own code stays in the message and its details (a
        // `retryable: false` among them) stay as they were.
        let mut attributed = ErrorInfo::host(
            ErrorCode::MemoryLimit,
            format!(
                "{who} ran out of memory (WEFT_MEMORY_LIMIT_MB) and failed with {}: {}",
                error.code, error.message
            ),
        );
        attributed.details = error.details;
        attributed
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            return Ok(false);
        }
        self.grown_to = self.grown_to.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
