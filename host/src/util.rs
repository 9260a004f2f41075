//! Small helpers shared across modules.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` so that readers see either the old file or the
/// complete new one, durably: write a sibling temp file, fsync it, rename
/// over, fsync the directory.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        uuid::Uuid::new_v4().simple()
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The rename is durable only once the directory is: without this, a
    // power loss could keep a database row that names the file (fsynced)
    // and lose the file itself.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
