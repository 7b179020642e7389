//! Differential: for archives the structure-aware generator makes (the fuzz target's, with
//! entries that carry data where they should not, names in every form, zip records in the wrong
//! place) and the registry accepts, Python's extraction (tarfile with the `data` filter, zipfile)
//! and GNU tar see the same paths, and the metadata.json the registry read. An archive that other
//! extractors read differently is one the registry must refuse.

use std::io::{Cursor, Write};
use std::path::PathBuf;

use registry_shared::distribution::read_distribution;
use registry_shared::test_support::fuzz::{fuzz_limits, structured_archive};
use serde_json::Value;

/// How many accepted archives one run checks, and how many it may generate to find them.
const ACCEPTED: usize = 300;
const ATTEMPTS: usize = 20_000;

#[test]
fn other_extractors_see_what_the_registry_accepted() {
    // A fixed seed by default, so a failure can be run again; REGISTRY_DIFFERENTIAL_SEED varies it.
    let seed = std::env::var("REGISTRY_DIFFERENTIAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let mut rng = fastrand::Rng::with_seed(seed);
    let folder = tempfile::tempdir().unwrap();
    let mut accepted: Vec<(PathBuf, String, String)> = Vec::new();
    for attempt in 0..ATTEMPTS {
        if accepted.len() == ACCEPTED {
            break;
        }
        let len = rng.usize(1..160);
        let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let Some(archive) = structured_archive(&data) else { continue };
        let Ok(distribution) = read_distribution(&mut Cursor::new(&archive), &fuzz_limits()) else { continue };
        let extension = if archive.starts_with(b"PK") {
            "zip"
        } else if archive.starts_with(&[0x1f, 0x8b]) {
            "tar.gz"
        } else {
            "tar"
        };
        let path = folder.path().join(format!("{attempt}.{extension}"));
        std::fs::File::create(&path).unwrap().write_all(&archive).unwrap();
        let metadata = &distribution.metadata;
        accepted.push((path, metadata.raw_id.clone(), metadata.version.as_str().to_owned()));
    }
    assert!(accepted.len() >= ACCEPTED / 2, "only {} accepted archives generated (seed {seed})", accepted.len());

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/testing/extractors");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .args(accepted.iter().map(|(path, _, _)| path))
        .output()
        .expect("python3 runs the extractors");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let seen: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(seen.len(), accepted.len());
    // What an extractor says can be long: enough of it to tell why.
    let short = |value: &Value| value.to_string().chars().take(600).collect::<String>();
    for (extracted, (path, id, version)) in seen.iter().zip(&accepted) {
        let keep = |p: &PathBuf| std::fs::copy(p, std::env::temp_dir().join(p.file_name().unwrap())).ok();
        let python = &extracted["python"];
        if python.get("error").is_some() {
            keep(path);
            panic!("{}: the registry accepted what Python refuses: {} (seed {seed})", path.display(), short(python));
        }
        if let Some(gnu) = extracted.get("gnutar") {
            if gnu.get("error").is_some() || gnu["paths"] != python["paths"] {
                keep(path);
                panic!(
                    "{}: GNU tar and Python disagree: {} / {} (seed {seed})",
                    path.display(),
                    short(gnu),
                    short(python)
                );
            }
            assert_eq!(gnu["metadata"], python["metadata"], "{}", path.display());
        }
        let metadata: Value =
            serde_json::from_str(python["metadata"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
        if metadata["metadata"]["id"] != id.as_str() || metadata["metadata"]["version"] != version.as_str() {
            keep(path);
            panic!(
                "{}: another metadata.json than the registry read: {} (seed {seed})",
                path.display(),
                python["metadata"]
            );
        }
    }
}
