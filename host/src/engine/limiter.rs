//! Memory and table limits for one guest instance.

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
