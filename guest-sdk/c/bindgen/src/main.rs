//! `weft-c-bindgen <wit dir> <world> <out dir>`: writes `<world>.h`,
//! `<world>.c` and `<world>_component_type.o` for a C guest, exactly as
//! `wit-bindgen c <wit dir> --world <world> --out-dir <out dir>` would.
//!
//! The C SDK builds its guests with this rather than the `wit-bindgen`
//! CLI: the generator is the same library, while the CLI drags in every
//! other language's generator and a test harness and takes minutes to
//! install on a fresh machine.

use std::path::PathBuf;

use anyhow::{Context, bail};
use wit_bindgen_core::wit_parser::Resolve;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [wit, world, out] = args.as_slice() else {
        bail!("usage: weft-c-bindgen <wit dir> <world> <out dir>");
    };
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("reading the WIT in {wit}"))?;
    let world = resolve.select_world(&[package], Some(world))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        // Unchanged files keep their timestamps, so make sees nothing new.
        if std::fs::read(&path).is_ok_and(|old| old == contents) {
            continue;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
