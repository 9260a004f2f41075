//! Linking components against a Weft world, once per module.
//!
//! Import resolution and type checks happen when a component is prepared;
//! an activation or an RPC attempt then only instantiates the prepared
//! form. [`Prepared`] is that cache for any [`World`]: the workflow world
//! (`replay/runtime.rs`) and the RPC world (`rpc/`) each say how to link
//! and how to check exports, and share everything else.

use crate::model::Digest;
use std::collections::HashMap;
use std::sync::Mutex;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

/// A world a component can implement.
pub trait World: 'static {
    /// The store data of an instance.
    type State: 'static;
    /// A component linked and checked against this world, ready to
    /// instantiate (cheap to clone).
    type Pre: Clone + Send + Sync + 'static;
    /// What a component of this world is called in errors.
    const DESCRIPTION: &'static str;

    /// Adds the host's imports for this world to `linker`.
    fn link(linker: &mut Linker<Self::State>) -> wasmtime::Result<()>;

    /// Checks that `pre` exports what the world requires.
    fn check_exports(pre: InstancePre<Self::State>) -> wasmtime::Result<Self::Pre>;
}

/// A linker for world `W` and the components prepared with it, by digest.
pub struct Prepared<W: World> {
    linker: Linker<W::State>,
    by_digest: Mutex<HashMap<Digest, W::Pre>>,
}

impl<W: World> Prepared<W> {
    pub fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(engine);
        W::link(&mut linker)?;
        Ok(Self {
            linker,
            by_digest: Mutex::default(),
        })
    }

    /// Checks that `component` implements the world: every import
    /// satisfiable, every export present with the right type. The error
    /// names what is missing or mismatched.
    pub fn prepare(&self, component: &Component) -> wasmtime::Result<W::Pre> {
        W::check_exports(self.linker.instantiate_pre(component)?)
    }

    /// The prepared component of `digest`, if this process has one.
    pub fn cached(&self, digest: &Digest) -> Option<W::Pre> {
        self.by_digest.lock().ok()?.get(digest).cloned()
    }

    pub fn insert(&self, digest: Digest, pre: W::Pre) {
        if let Ok(mut map) = self.by_digest.lock() {
            map.insert(digest, pre);
        }
    }
}
