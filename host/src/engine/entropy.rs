//! A workflow's randomness, as a function of (run, journal position).
//!
//! Replay skips the body of a recorded inline step. If the guest's random
//! numbers came from one stream per activation, every draw made inside a step
//! body on the first execution would be missing on replay, and every later
//! draw would shift by that many values: the replay would then feed other
//! inputs to later steps and fail as `non_deterministic`. So the host reseeds
//! every random source (WASI secure and insecure random, `steps.random`)
//! each time the guest crosses a journal position: the values drawn between
//! two steps depend only on the run and on where in the journal the guest
//! is, never on what earlier step bodies drew.
//!
//! A step body gets its own stream per attempt, so a retried body does not
//! repeat the values of the attempt before it.

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

/// Which stretch of guest code the draws belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Workflow code after the first `steps` journal entries were resolved
    /// (0: before any step).
    After { steps: u32 },
    /// The body of the inline step at journal position `seq`, attempt `attempt`.
    Body { seq: u32, attempt: u32 },
}

/// One of the independent streams a guest can draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// `wasi:random/random` (what `getrandom`, `crypto.getRandomValues` and
    /// `os.urandom` read).
    WasiSecure,
    /// `wasi:random/insecure`.
    WasiInsecure,
    /// The `steps.random` import of the Weft WIT.
    Steps,
}

impl Stream {
    #[cfg(test)]
    const ALL: [Stream; 3] = [Stream::WasiSecure, Stream::WasiInsecure, Stream::Steps];

    fn label(self) -> &'static str {
        match self {
            Stream::WasiSecure => "wasi-secure",
            Stream::WasiInsecure => "wasi-insecure",
            Stream::Steps => "steps-random",
        }
    }
}

/// A deterministic generator for one purpose (`label`) of one run.
pub fn seeded_rng(run_id: &str, label: &str) -> ChaCha20Rng {
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"weft-random\0")
        .chain_update(label.as_bytes())
        .chain_update(b"\0")
        .chain_update(run_id.as_bytes())
        .finalize()
        .into();
    ChaCha20Rng::from_seed(seed)
}

fn stream_rng(run_id: &str, stream: Stream, segment: Segment) -> ChaCha20Rng {
    let label = match segment {
        Segment::After { steps } => format!("{}\0after\0{steps}", stream.label()),
        Segment::Body { seq, attempt } => format!("{}\0body\0{seq}\0{attempt}", stream.label()),
    };
    seeded_rng(run_id, &label)
}

struct Streams {
    run_id: String,
    segment: Segment,
    wasi_secure: ChaCha20Rng,
    wasi_insecure: ChaCha20Rng,
    steps: ChaCha20Rng,
}

impl Streams {
    fn at(run_id: String, segment: Segment) -> Self {
        Self {
            wasi_secure: stream_rng(&run_id, Stream::WasiSecure, segment),
            wasi_insecure: stream_rng(&run_id, Stream::WasiInsecure, segment),
            steps: stream_rng(&run_id, Stream::Steps, segment),
            run_id,
            segment,
        }
    }

    fn rng(&mut self, stream: Stream) -> &mut ChaCha20Rng {
        match stream {
            Stream::WasiSecure => &mut self.wasi_secure,
            Stream::WasiInsecure => &mut self.wasi_insecure,
            Stream::Steps => &mut self.steps,
        }
    }
}

/// The random streams of one workflow activation, shared by the WASI context
/// and the `steps` imports.
#[derive(Clone)]
pub struct Entropy {
    inner: Arc<Mutex<Streams>>,
}

impl Entropy {
    /// Streams of `run_id`, positioned before the first step.
    pub fn new(run_id: &str) -> Self {
        let streams = Streams::at(run_id.to_string(), Segment::After { steps: 0 });
        Self {
            inner: Arc::new(Mutex::new(streams)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        // A panic while holding the lock cannot leave the streams half
        // updated in a way that matters: every segment change reseeds all.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves every stream to `segment`, restarting it from that segment's
    /// seed. Entering the segment the streams are already in is a no-op, so
    /// draws within one segment continue where they left off.
    pub fn enter(&self, segment: Segment) {
        let mut s = self.lock();
        if s.segment == segment {
            return;
        }
        let run_id = std::mem::take(&mut s.run_id);
        *s = Streams::at(run_id, segment);
    }

    /// The next value of `stream`.
    pub fn next_u64(&self, stream: Stream) -> u64 {
        rand::Rng::next_u64(self.lock().rng(stream))
    }

    /// A generator handle reading `stream`, for the WASI context.
    pub fn source(&self, stream: Stream) -> EntropySource {
        EntropySource {
            entropy: self.clone(),
            stream,
        }
    }
}

/// One stream of an [`Entropy`], as a `rand` generator.
pub struct EntropySource {
    entropy: Entropy,
    stream: Stream,
}

impl rand::TryRng for EntropySource {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(rand::Rng::next_u32(self.entropy.lock().rng(self.stream)))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.entropy.next_u64(self.stream))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::Rng::fill_bytes(self.entropy.lock().rng(self.stream), dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_after_a_step_do_not_depend_on_draws_inside_it() {
        let first = Entropy::new("run-1");
        first.enter(Segment::Body { seq: 0, attempt: 1 });
        for _ in 0..17 {
            first.next_u64(Stream::WasiSecure);
        }
        first.enter(Segment::After { steps: 1 });
        let replayed = Entropy::new("run-1");
        // Replay skips the body altogether.
        replayed.enter(Segment::After { steps: 1 });
        for s in Stream::ALL {
            assert_eq!(first.next_u64(s), replayed.next_u64(s));
        }
    }

    #[test]
    fn segments_streams_and_runs_differ() {
        let a = Entropy::new("run-1");
        let b = Entropy::new("run-2");
        assert_ne!(a.next_u64(Stream::Steps), b.next_u64(Stream::Steps));
        let x = a.next_u64(Stream::WasiSecure);
        a.enter(Segment::Body { seq: 0, attempt: 1 });
        let y = a.next_u64(Stream::WasiSecure);
        a.enter(Segment::Body { seq: 0, attempt: 2 });
        let z = a.next_u64(Stream::WasiSecure);
        assert!(x != y && y != z && x != z);
    }
}
