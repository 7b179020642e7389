//! The reader against valid packages in every format and a corpus of broken ones.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::reader::ReadError;
use super::*;
use crate::test_support::{Entry, ICON_SVG, Package, gzip, gzip_bomb, single_tenant_metadata};

fn read_with(bytes: &[u8], limits: &Limits) -> Result<Distribution, ReadError> {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(bytes).unwrap();
    read_distribution(&mut file, limits)
}

fn read(bytes: &[u8]) -> Result<Distribution, ReadError> {
    read_with(bytes, &Limits::default())
}

fn refusal(bytes: &[u8]) -> DistributionError {
    match read(bytes) {
        Err(ReadError::Invalid(e)) => e,
        Err(ReadError::Io(e)) => panic!("expected a refusal, got an I/O error: {e}"),
        Ok(d) => panic!("expected a refusal, got {:?}", d.metadata),
    }
}

fn kafka() -> Package {
    Package::single_tenant("kafka-connector", "1.0.0")
}

#[test]
fn reads_a_single_tenant_package_in_every_format() {
    for bytes in [kafka().tar_gz(), kafka().tar(), kafka().zip()] {
        let d = read(&bytes).unwrap();
        assert_eq!(d.metadata.source_folder(), "kafka-connector-1.0.0");
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(d.archive_bytes, bytes.len() as u64);
        assert_eq!(d.icons["icon.svg"].bytes, ICON_SVG);
        assert_eq!(d.ui_config["required"], json!(["zeta"]));
        let keys: Vec<_> = d.ui_config["properties"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["zeta", "alpha"], "key order is kept");
    }
}

#[test]
fn builds_one_row_per_connector_of_a_multi_tenant_package() {
    let package = Package::multi_tenant("jdbc-connector", "1.0.0", &["postgres-connector", "mysql-connector", "extra"]);
    // `extra` has no schema of its own in ui-config.json and no icon file.
    let package = package.without("extra.svg");
    let mut ui: serde_json::Value = serde_json::from_slice(match &package.entries[2].1 {
        Entry::File(b) => b,
        _ => unreachable!(),
    })
    .unwrap();
    ui.as_object_mut().unwrap().remove("extra");
    let package = package.replace("ui-config.json", &serde_json::to_vec(&ui).unwrap());
    let d = read(&package.tar_gz()).unwrap();
    let now = crate::domain::Timestamp::now();
    let rows = build_rows(&d, "jdbc.tar_abcdef.gz", now).unwrap();
    let ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["postgres-connector-1.0.0", "mysql-connector-1.0.0", "extra-1.0.0"]);
    let pg = &rows[0];
    assert_eq!(pg.status, crate::domain::Status::Live);
    assert_eq!(pg.source_url, "jdbc.tar_abcdef.gz");
    assert_eq!(pg.source.source, "jdbc-connector-1.0.0");
    assert_eq!(pg.source.main_program.as_deref(), Some("main.py"));
    assert_eq!(pg.category.as_str(), "batch");
    assert!(pg.iconurl.as_deref().unwrap().starts_with("data:image/svg+xml;base64,"));
    assert!(pg.ui_spec.get().contains("\"zeta\""));
    assert_eq!(pg.live_date, Some(now));
    assert_eq!(rows[2].ui_spec.get(), "{}", "a connector without a schema gets {{}}");
    assert_eq!(rows[2].iconurl, None, "a missing icon leaves iconurl null");
}

#[test]
fn finds_icons_wherever_they_stand_in_the_archive() {
    let top = "kafka-connector-1.0.0";
    let mut metadata = single_tenant_metadata("kafka-connector", "1.0.0");
    metadata["metadata"]["icon"] = json!("assets/logo.bin");
    // The icon comes before metadata.json and has no image extension: found by a second pass.
    let package = Package::default()
        .file(&format!("{top}/assets/logo.bin"), b"\x89PNG...")
        .file(&format!("{top}/lib.jar"), b"jar")
        .json(&format!("{top}/metadata.json"), &metadata)
        .json(&format!("{top}/ui-config.json"), &json!({"type": "object"}));
    for bytes in [package.tar_gz(), package.zip()] {
        let d = read(&bytes).unwrap();
        assert_eq!(d.icons["assets/logo.bin"].bytes, b"\x89PNG...");
        assert_eq!(
            d.icons["assets/logo.bin"].data_uri("assets/logo.bin"),
            "data:application/octet-stream;base64,iVBORy4uLg=="
        );
    }
    // An http(s) icon is passed through as the icon URL.
    metadata["metadata"]["icon"] = json!("https://example.org/k.svg");
    let package = package.replace("metadata.json", &serde_json::to_vec(&metadata).unwrap());
    let d = read(&package.tar_gz()).unwrap();
    let rows = build_rows(&d, "k", crate::domain::Timestamp::now()).unwrap();
    assert_eq!(rows[0].iconurl.as_deref(), Some("https://example.org/k.svg"));
}

#[test]
fn the_shallowest_metadata_json_wins() {
    let top = "kafka-connector-1.0.0";
    let mut deep = single_tenant_metadata("other", "9.9.9");
    deep["metadata"]["name"] = json!("deep");
    let package = Package::default().json(&format!("{top}/vendor/x/metadata.json"), &deep).entries;
    let mut all = kafka();
    all.entries.splice(0..0, package);
    let d = read(&all.tar_gz()).unwrap();
    assert_eq!(d.metadata.connectors[0].name, "kafka-connector name");
}

#[test]
fn refuses_what_is_not_an_archive() {
    assert!(
        matches!(refusal(b"hello, this is not an archive"), DistributionError::Unreadable(m) if m.contains("not a tar, tar.gz or zip"))
    );
    assert!(matches!(refusal(b""), DistributionError::Unreadable(m) if m.contains("empty")));
    assert!(matches!(refusal(b"BZh91AY&SY"), DistributionError::Unreadable(m) if m.contains("bzip2")));
    assert!(refusal(b"not an archive").to_string().starts_with("Failed to Extract the File: "));
}

#[test]
fn refuses_truncated_and_corrupt_gzip() {
    let bytes = kafka().tar_gz();
    let truncated = &bytes[..bytes.len() / 2];
    let e = refusal(truncated);
    assert!(matches!(&e, DistributionError::Unreadable(m) if m.contains("truncated")), "{e:?}");
    let mut corrupt = bytes.clone();
    let middle = corrupt.len() / 2;
    for b in &mut corrupt[middle..middle + 16] {
        *b ^= 0x5a;
    }
    assert!(matches!(refusal(&corrupt), DistributionError::Unreadable(_)), "corrupt");
    let zip = kafka().zip();
    assert!(matches!(refusal(&zip[..zip.len() - 30]), DistributionError::Unreadable(_)), "truncated zip");
}

#[test]
fn refuses_missing_empty_or_invalid_metadata() {
    assert_eq!(refusal(&kafka().without("metadata.json").tar_gz()), DistributionError::MissingMetadata);
    assert_eq!(refusal(&kafka().replace("metadata.json", b"{}").tar_gz()), DistributionError::MissingMetadata);
    assert_eq!(refusal(&kafka().replace("metadata.json", b"").tar_gz()), DistributionError::MissingMetadata);
    assert!(matches!(
        refusal(&kafka().replace("metadata.json", b"{\"metadata\": ").tar_gz()),
        DistributionError::MetadataNotJson(_)
    ));
    let mut missing_field = single_tenant_metadata("kafka-connector", "1.0.0");
    missing_field["metadata"].as_object_mut().unwrap().remove("owner");
    let e = refusal(&kafka().replace("metadata.json", &serde_json::to_vec(&missing_field).unwrap()).tar_gz());
    assert_eq!(e.to_string(), "metadata.json: metadata.owner is required");
    let mut multi = single_tenant_metadata("kafka-connector", "1.0.0");
    multi["metadata"]["tenant"] = json!("multiple");
    let e = refusal(&kafka().replace("metadata.json", &serde_json::to_vec(&multi).unwrap()).tar_gz());
    assert!(e.to_string().contains("connectors must list at least one connector"), "{e}");
}

#[test]
fn refuses_a_wrong_top_folder() {
    let mut package = kafka();
    for (path, _) in &mut package.entries {
        *path = path.replace("kafka-connector-1.0.0", "kafka-connector-2.0.0");
    }
    let e = refusal(&package.tar_gz());
    assert_eq!(e, DistributionError::MissingSourceFolder("kafka-connector-1.0.0".into()));
    assert_eq!(
        e.to_string(),
        "connector source folder not found; expecting kafka-connector-1.0.0 folder inside the archive"
    );
}

#[test]
fn refuses_missing_or_empty_ui_config() {
    assert_eq!(refusal(&kafka().without("ui-config.json").tar_gz()), DistributionError::MissingUiConfig);
    assert_eq!(refusal(&kafka().replace("ui-config.json", b"{}").tar_gz()), DistributionError::MissingUiConfig);
    assert_eq!(refusal(&kafka().replace("ui-config.json", b" \n").zip()), DistributionError::MissingUiConfig);
    assert!(matches!(
        refusal(&kafka().replace("ui-config.json", b"{oops").tar_gz()),
        DistributionError::UiConfigNotJson(_)
    ));
}

#[test]
fn refuses_traversal_and_absolute_entries() {
    for evil in ["kafka-connector-1.0.0/../../evil.sh", "../evil.sh", "/etc/cron.d/evil", "a\\..\\..\\evil"] {
        let package = kafka().file(evil, b"#!/bin/sh");
        for bytes in [package.tar_gz(), package.zip()] {
            assert!(matches!(refusal(&bytes), DistributionError::UnsafeEntry { .. }), "{evil}");
        }
    }
}

#[test]
fn never_follows_links_or_special_files() {
    let top = "kafka-connector-1.0.0";
    let linked =
        kafka().without("metadata.json").entry(&format!("{top}/metadata.json"), Entry::Symlink("/etc/passwd".into()));
    for bytes in [linked.tar_gz(), linked.zip()] {
        let e = refusal(&bytes);
        assert!(matches!(e, DistributionError::NotARegularFile { file: "metadata.json", .. }), "{e:?}");
    }
    let hard = kafka().without("ui-config.json").entry(&format!("{top}/ui-config.json"), Entry::HardLink("x".into()));
    assert!(matches!(refusal(&hard.tar_gz()), DistributionError::NotARegularFile { file: "ui-config.json", .. }));
    let icon = kafka().without("icon.svg").entry(&format!("{top}/icon.svg"), Entry::Fifo);
    assert!(matches!(refusal(&icon.tar_gz()), DistributionError::NotARegularFile { file: "icon", .. }));
    // Links elsewhere in the package are skipped, not followed.
    let elsewhere = kafka().entry(&format!("{top}/libs/current.jar"), Entry::Symlink("../../../etc/shadow".into()));
    assert!(read(&elsewhere.tar_gz()).is_ok());
}

fn assert_fast(started: Instant) {
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[test]
fn refuses_a_gzip_bomb_without_inflating_it() {
    // 3 GiB of zeros in a few MB: a tar header, then the same small gzip member of 1 MiB of zeros
    // 3072 times (gzip members concatenate).
    let header_member = gzip_bomb("kafka-connector-1.0.0", 0);
    let mut header = tar::Header::new_gnu();
    header.set_path("kafka-connector-1.0.0/zeros.bin").unwrap();
    header.set_size(3 << 30);
    header.set_cksum();
    let zeros_member = gzip(&vec![0u8; 1 << 20]);
    let mut bomb = gzip(header.as_bytes());
    for _ in 0..3072 {
        bomb.extend_from_slice(&zeros_member);
    }
    assert!(bomb.len() < 16 << 20);
    drop(header_member);
    let started = Instant::now();
    assert!(matches!(refusal(&bomb), DistributionError::UncompressedTooLarge { .. }));
    assert_fast(started);

    // The same zeros with no tar header: the tar ends at once and the zeros behind it are refused.
    let mut zeros = zeros_member.clone();
    for _ in 0..3071 {
        zeros.extend_from_slice(&zeros_member);
    }
    let started = Instant::now();
    assert!(matches!(refusal(&zeros), DistributionError::Unreadable(m) if m.contains("after the end")));
    assert_fast(started);
}

#[test]
fn refuses_huge_metadata_and_too_many_entries() {
    let huge = vec![b' '; 2 << 20];
    let started = Instant::now();
    let e = refusal(&kafka().replace("metadata.json", &huge).tar_gz());
    assert!(matches!(e, DistributionError::FileTooLarge { file: "metadata.json", .. }), "{e:?}");
    assert_fast(started);

    let mut many = kafka();
    for i in 0..30_000 {
        many = many.file(&format!("kafka-connector-1.0.0/f/{i}"), b"");
    }
    let started = Instant::now();
    assert_eq!(refusal(&many.tar_gz()), DistributionError::TooManyEntries { limit: 20_000 });
    assert_eq!(refusal(&many.zip()), DistributionError::TooManyEntries { limit: 20_000 });
    assert_fast(started);
}

#[test]
fn enforces_each_limit() {
    let bytes = kafka().tar_gz();
    let tight = |f: fn(&mut Limits)| {
        let mut limits = Limits::default();
        f(&mut limits);
        match read_with(&bytes, &limits) {
            Err(ReadError::Invalid(e)) => e,
            other => panic!("expected a refusal, got {:?}", other.map(|d| d.sha256)),
        }
    };
    assert!(matches!(tight(|l| l.max_archive_bytes = 10), DistributionError::ArchiveTooLarge { limit: 10, .. }));
    assert!(matches!(
        tight(|l| l.max_uncompressed_bytes = 100),
        DistributionError::UncompressedTooLarge { limit: 100 }
    ));
    assert!(matches!(tight(|l| l.max_entries = 2), DistributionError::TooManyEntries { limit: 2 }));
    assert!(matches!(
        tight(|l| l.max_metadata_bytes = 10),
        DistributionError::FileTooLarge { file: "metadata.json", .. }
    ));
    assert!(matches!(
        tight(|l| l.max_ui_config_bytes = 10),
        DistributionError::FileTooLarge { file: "ui-config.json", .. }
    ));
    assert!(matches!(tight(|l| l.max_icon_bytes = 10), DistributionError::FileTooLarge { file: "icon", .. }));
}

fn many_connectors(count: usize, icon: &[u8]) -> Package {
    let names: Vec<String> = (0..count).map(|i| format!("tenant-{i:03}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut package = Package::multi_tenant("many", "1.0.0", &names);
    for name in &names {
        package = package.replace(&format!("{name}.svg"), icon);
    }
    package
}

fn budget_refusal(package: &Package) -> String {
    let d = read(&package.tar_gz()).expect("the archive itself is valid");
    match build_rows(&d, "many.tar_abcdef.gz", crate::domain::Timestamp::now()) {
        Err(DistributionError::RegistrationTooLarge(message)) => message,
        other => panic!("expected the write budget to refuse, got {:?}", other.map(|rows| rows.len())),
    }
}

#[test]
fn the_write_budget_bounds_connectors_and_bytes() {
    let fits = many_connectors(WriteBudget::MAX_CONNECTORS, ICON_SVG);
    let d = read(&fits.tar_gz()).unwrap();
    assert_eq!(build_rows(&d, "x", crate::domain::Timestamp::now()).unwrap().len(), WriteBudget::MAX_CONNECTORS);

    let message = budget_refusal(&many_connectors(WriteBudget::MAX_CONNECTORS + 1, ICON_SVG));
    assert!(message.contains("13 connectors") && message.contains("at most 12"), "{message}");

    // One shared 100 KB icon (as a data URI in each row): no package can multiply it past the budget.
    let icon = vec![b'a'; 100 * 1024];
    let message = budget_refusal(&many_connectors(2, &icon));
    assert!(message.contains(&WriteBudget::MAX_LISTED_ROW_BYTES.to_string()), "{message}");

    let icon = vec![b'a'; 70 * 1024];
    let message = budget_refusal(&many_connectors(12, &icon));
    assert!(message.contains(&WriteBudget::MAX_TOTAL_BYTES.to_string()), "{message}");
}

#[test]
fn the_large_benchmark_packages_fit_the_write_budget() {
    let d = read(&crate::test_support::realistic_tenants(3, "1.2.0").tar_gz()).unwrap();
    let rows = build_rows(&d, "x", crate::domain::Timestamp::now()).unwrap();
    assert_eq!(rows.len(), WriteBudget::MAX_CONNECTORS);
    assert_eq!(rows[0].id.as_str(), "bench-0036-connector-1.2.0");
    assert_ne!(rows[0].iconurl, rows[1].iconurl, "each connector has its own icon");
}
