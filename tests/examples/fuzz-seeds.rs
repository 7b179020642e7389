//! Writes the fuzz targets' seed corpora: `cargo run -p registry-tests --example fuzz-seeds -- DIR`
//! makes `DIR/<target>/<seed>` for each target (`scripts/fuzz` does this before each run).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".to_owned()));
    for (target, name, bytes) in registry_shared::test_support::fuzz::seeds() {
        let folder = root.join(target);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(name), bytes)?;
    }
    Ok(())
}
