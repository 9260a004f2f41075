//! Uploaded Wasm modules and their versions.

use super::Millis;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// The sha256 of a module's bytes, as 64 lowercase hex digits.
/// Module bytes are stored under it, and runs are pinned to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    /// Parses a stored or user-supplied digest, accepting only 64 hex digits
    /// so a digest can be used as a file name or object key safely.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for logs and CLI tables.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which Weft world a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    Workflow,
    Rpc,
}

impl ModuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workflow => "workflow",
            Self::Rpc => "rpc",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "workflow" => Some(Self::Workflow),
            "rpc" => Some(Self::Rpc),
            _ => None,
        }
    }
}

/// One uploaded version of a named module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleVersion {
    pub name: String,
    /// 1, 2, 3... per name; the highest is the one new runs use.
    pub version: u32,
    pub digest: Digest,
    pub kind: ModuleKind,
    pub size: u64,
    pub uploaded_at: Millis,
    /// RPC modules only: the hosts (`name` or `name:port`) its outbound
    /// HTTP requests may reach. Empty: no network at all.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}
