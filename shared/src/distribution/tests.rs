//! The reader against valid packages in every format and a corpus of broken ones.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::reader::ReadError;
use super::*;
use crate::test_support::{
    Entry, ICON_SVG, Package, RawTar, gzip, gzip_bomb, gzip_huge_header, single_tenant_metadata, zip_directory,
    zip_with_unlisted_last_entry,
};

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
        kafka().without("metadata.json").entry(&format!("{top}/metadata.json"), Entry::Symlink("icon.svg".into()));
    let e = refusal(&linked.tar_gz());
    assert!(matches!(e, DistributionError::NotARegularFile { file: "metadata.json", .. }), "{e:?}");
    // In a zip, extractors disagree on what a link is (unzip: a link; Python: a file).
    let e = refusal(&linked.zip());
    assert!(matches!(e, DistributionError::UnsafeEntry { .. }), "{e:?}");
    let hard = kafka().without("ui-config.json").entry(&format!("{top}/ui-config.json"), Entry::HardLink("x".into()));
    assert!(matches!(refusal(&hard.tar_gz()), DistributionError::NotARegularFile { file: "ui-config.json", .. }));
    // Links inside the package, elsewhere than the files the registry reads, are skipped.
    let inside = kafka().entry(&format!("{top}/libs/current.jar"), Entry::Symlink("../icon.svg".into()));
    assert!(read(&inside.tar_gz()).is_ok());
}

/// What a careful extractor (Python's extraction filter) refuses to make, the registry refuses
/// to register, wherever it is in the package.
#[test]
fn refuses_links_out_of_the_package_and_special_files_anywhere() {
    let top = "kafka-connector-1.0.0";
    for (path, entry) in [
        (format!("{top}/libs/current.jar"), Entry::Symlink("../../../etc/shadow".into())),
        (format!("{top}/libs/current.jar"), Entry::Symlink("/etc/shadow".into())),
        (format!("{top}/metadata.json"), Entry::Symlink("/etc/passwd".into())),
        (format!("{top}/libs/passwd"), Entry::HardLink("/etc/passwd".into())),
        (format!("{top}/libs/passwd"), Entry::HardLink(format!("{top}/../../etc/passwd"))),
        (format!("{top}/icon.svg"), Entry::Fifo),
        (format!("{top}/libs/pipe"), Entry::Fifo),
    ] {
        let package = if path.ends_with("metadata.json") || path.ends_with("icon.svg") {
            kafka().without(path.rsplit('/').next().unwrap()).entry(&path, entry.clone())
        } else {
            kafka().entry(&path, entry.clone())
        };
        let e = refusal(&package.tar_gz());
        assert!(matches!(e, DistributionError::UnsafeEntry { .. }), "{path} {entry:?}: {e:?}");
    }
}

/// Bytes after a header that is no regular file are data to this reader, and further headers to
/// GNU tar, Python and busybox: such an entry is refused, whatever it could hide.
#[test]
fn refuses_data_after_entries_that_are_not_files() {
    let top = "kafka-connector-1.0.0";
    let hidden = RawTar::package(&kafka()).finish();
    for entry_type in [tar::EntryType::Directory, tar::EntryType::Symlink, tar::EntryType::Link, tar::EntryType::Fifo] {
        let raw = RawTar::package(&kafka()).entry(entry_type, &format!("{top}/hiding"), &hidden).finish();
        let e = refusal(&raw);
        assert!(matches!(e, DistributionError::UnsafeEntry { .. }), "{entry_type:?}: {e:?}");
    }
    // An old-style regular entry named like a folder is a folder to GNU tar and Python.
    let folder_named = RawTar::package(&kafka().without("metadata.json"))
        .entry(
            tar::EntryType::Regular,
            &format!("{top}/metadata.json/"),
            &serde_json::to_vec(&single_tenant_metadata("kafka-connector", "1.0.0")).unwrap(),
        )
        .finish();
    assert!(matches!(refusal(&folder_named), DistributionError::UnsafeEntry { .. }));
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

const TOP: &str = "kafka-connector-1.0.0";

fn unreadable(bytes: &[u8], expected: &str) {
    match refusal(bytes) {
        DistributionError::Unreadable(m) if m.contains(expected) => {}
        other => panic!("expected an unreadable archive saying {expected:?}, got {other:?}"),
    }
}

#[test]
fn extension_headers_beyond_the_cap_are_refused_before_they_are_read() {
    let cap = Limits::default().max_header_bytes;
    for (entry_type, what) in [
        (tar::EntryType::XHeader, "PAX extended header"),
        (tar::EntryType::GNULongName, "GNU long name"),
        (tar::EntryType::GNULongLink, "GNU long link name"),
        (tar::EntryType::XGlobalHeader, "PAX global header"),
    ] {
        // 256 MiB in a few hundred KB, refused at its header.
        let bytes = gzip_huge_header(entry_type, 256 << 20);
        assert!(bytes.len() < 2 << 20, "{}", bytes.len());
        let started = Instant::now();
        assert_eq!(refusal(&bytes), DistributionError::HeaderTooLarge { what, limit: cap });
        assert_fast(started);
    }
    // Just over the cap, in a plain tar too.
    let path = format!("{TOP}/{}", "p".repeat(cap as usize));
    let bytes = RawTar::package(&kafka()).pax(&[("path", path.as_bytes())]).file("x", b"").finish();
    assert!(matches!(refusal(&bytes), DistributionError::HeaderTooLarge { what: "PAX extended header", .. }));
    let bytes = RawTar::package(&kafka()).long_name(path.as_bytes()).file("x", b"").finish();
    assert!(matches!(refusal(&bytes), DistributionError::HeaderTooLarge { what: "GNU long name", .. }));
}

#[test]
fn many_long_pax_paths_are_refused_at_the_first() {
    let mut tar = RawTar::package(&kafka());
    for i in 0..1000 {
        let path = format!("{TOP}/{i}/{}", "p".repeat(128 << 10));
        tar = tar.pax(&[("path", path.as_bytes())]).file("x", b"");
    }
    let e = refusal(&gzip(&tar.finish()));
    assert!(matches!(e, DistributionError::HeaderTooLarge { what: "PAX extended header", .. }), "{e:?}");
}

#[test]
fn pax_paths_and_gnu_long_names_name_the_entry() {
    // Over the 100 bytes of a header's name, in parts a file system can store.
    let deep = format!("{TOP}/{}/icon.svg", ["d".repeat(100), "e".repeat(100), "f".repeat(100)].join("/"));
    let mut metadata = single_tenant_metadata("kafka-connector", "1.0.0");
    metadata["metadata"]["icon"] = json!(deep.strip_prefix(&format!("{TOP}/")).unwrap());
    let metadata = serde_json::to_vec(&metadata).unwrap();
    let package = kafka().without("metadata.json").without("icon.svg");
    let via_pax = RawTar::package(&package)
        .pax(&[("path", format!("{TOP}/metadata.json").as_bytes()), ("mtime", b"1700000000.5")])
        .file("bogus-name", &metadata)
        .pax(&[("path", deep.as_bytes()), ("size", ICON_SVG.len().to_string().as_bytes())])
        .file("bogus-icon", ICON_SVG)
        .finish();
    let via_gnu = RawTar::package(&package)
        .long_name(format!("{TOP}/metadata.json").as_bytes())
        .file("bogus-name", &metadata)
        .long_name(deep.as_bytes())
        .file("bogus-icon", ICON_SVG)
        .finish();
    for bytes in [via_pax, via_gnu] {
        let d = read(&gzip(&bytes)).unwrap();
        assert_eq!(d.metadata.raw_id, "kafka-connector");
        assert_eq!(d.icons.values().next().unwrap().bytes, ICON_SVG);
    }
}

#[test]
fn extension_headers_that_would_be_read_two_ways_are_refused() {
    let base = || RawTar::package(&kafka());
    let name = format!("{TOP}/libs/a.jar");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (base().pax(&[("size", b"5")]).file(&name, b"abc").finish(), "PAX size disagrees"),
        (base().pax(&[("path", name.as_bytes())]).pax(&[("path", b"b")]).file("x", b"").finish(), "two PAX"),
        (base().long_name(name.as_bytes()).long_name(b"b").file("x", b"").finish(), "two GNU long names"),
        (base().long_name(name.as_bytes()).pax(&[("path", b"b")]).file("x", b"").finish(), "both a PAX path"),
        (base().pax(&[("path", name.as_bytes())]).finish(), "ends with an extension header"),
        (base().pax(&[("GNU.sparse.major", b"1")]).file(&name, b"").finish(), "sparse"),
        (base().entry(tar::EntryType::GNUSparse, &name, b"").finish(), "sparse"),
        (base().pax(&[("path", b"")]).file(&name, b"").finish(), "malformed PAX"),
        (base().pax(&[("path", b"a"), ("path", b"b")]).file(&name, b"").finish(), "repeated path"),
        (base().entry(tar::EntryType::XHeader, "PaxHeader", b"5 a=b\n").file(&name, b"").finish(), "malformed PAX"),
        (base().entry(tar::EntryType::XHeader, "PaxHeader", b"99 path=a\n").file(&name, b"").finish(), "malformed PAX"),
        (base().entry(tar::EntryType::XHeader, "PaxHeader", b"garbage").file(&name, b"").finish(), "malformed PAX"),
        (base().global(&[("path", b"evil")]).file(&name, b"").finish(), "global header may not"),
    ];
    for (bytes, expected) in cases {
        unreadable(&bytes, expected);
    }
}

#[test]
fn global_headers_count_against_the_limits() {
    // `git archive` writes one with the commit id, first: fine.
    let mut with_comment = RawTar::default().global(&[("comment", b"0123456789abcdef")]);
    with_comment.0.extend_from_slice(&RawTar::package(&kafka()).0);
    assert!(read(&with_comment.finish()).is_ok());
    // Last, with no entry after it, Python refuses the archive: so does the registry.
    let trailing = RawTar::package(&kafka()).global(&[("comment", b"0123456789abcdef")]).finish();
    unreadable(&trailing, "ends with an extension header");

    let mut tar = RawTar::package(&kafka());
    for _ in 0..30_000 {
        tar = tar.global(&[("comment", b"x")]);
    }
    let started = Instant::now();
    assert_eq!(refusal(&gzip(&tar.finish())), DistributionError::TooManyEntries { limit: 20_000 });
    assert_fast(started);

    let limits = Limits { max_uncompressed_bytes: 1 << 20, ..Limits::default() };
    let mut tar = RawTar::package(&kafka());
    for _ in 0..20 {
        tar = tar.global(&[("comment", &[b'c'; 60_000])]);
    }
    let e = read_with(&gzip(&tar.finish()), &limits).unwrap_err();
    assert!(matches!(e, ReadError::Invalid(DistributionError::UncompressedTooLarge { limit: 1048576 })), "{e:?}");
}

#[test]
fn the_uncompressed_limit_holds_for_the_inflated_stream() {
    // 400 folders declare no size at all, but their headers inflate to 200 KiB.
    let mut package = kafka();
    for i in 0..400 {
        package = package.folder(&format!("{TOP}/d{i}"));
    }
    let limits = Limits { max_uncompressed_bytes: 100 << 10, ..Limits::default() };
    let e = read_with(&package.tar_gz(), &limits).unwrap_err();
    assert!(matches!(e, ReadError::Invalid(DistributionError::UncompressedTooLarge { .. })), "{e:?}");
    // Padding after the end marker counts too.
    let mut padded = kafka().tar();
    padded.resize(padded.len() + (900 << 10), 0);
    let limits = Limits { max_uncompressed_bytes: 512 << 10, ..Limits::default() };
    let e = read_with(&gzip(&padded), &limits).unwrap_err();
    assert!(matches!(e, ReadError::Invalid(DistributionError::UncompressedTooLarge { .. })), "{e:?}");
    assert!(read(&gzip(&padded)).is_ok(), "zero padding within the limits is fine");
}

#[test]
fn nothing_may_follow_the_end_of_the_archive() {
    let mut trailing = kafka().tar();
    trailing.extend_from_slice(&RawTar::default().file(&format!("{TOP}/metadata.json"), b"{}").finish());
    unreadable(&trailing, "after the end of the tar archive");
    unreadable(&gzip(&trailing), "after the end of the tar archive");
    let mut one_byte = kafka().tar();
    one_byte.push(1);
    unreadable(&one_byte, "after the end of the tar archive");

    let mut two_members = kafka().tar_gz();
    two_members.extend_from_slice(&gzip(&kafka().replace("metadata.json", b"{}").tar()));
    unreadable(&two_members, "after the end of the gzip stream");
    let mut garbage = kafka().tar_gz();
    garbage.extend_from_slice(b"garbage");
    unreadable(&garbage, "after the end of the gzip stream");
}

#[test]
fn two_entries_at_one_path_are_refused() {
    let metadata = serde_json::to_vec(&single_tenant_metadata("kafka-connector", "1.0.0")).unwrap();
    for (path, content) in [
        (format!("{TOP}/metadata.json"), metadata.clone()),
        (format!("{TOP}/ui-config.json"), b"{\"type\": \"object\"}".to_vec()),
        (format!("{TOP}/icon.svg"), ICON_SVG.to_vec()),
        (format!("{TOP}/lib.jar"), b"jar".to_vec()),
        (format!("./{TOP}//metadata.json"), metadata.clone()),
    ] {
        let package = kafka().file(&format!("{TOP}/lib.jar"), b"jar").file(&path, &content);
        let e = refusal(&package.tar_gz());
        assert!(matches!(&e, DistributionError::DuplicateEntry { .. }), "{path}: {e:?}");
        assert!(e.to_string().starts_with("archive holds more than one entry at \""), "{e}");
    }
    // A file and a folder at one path are two things too; a folder listed twice is harmless.
    let e = refusal(&kafka().folder(&format!("{TOP}/icon.svg")).tar_gz());
    assert!(matches!(e, DistributionError::DuplicateEntry { .. }), "{e:?}");
    assert!(read(&kafka().folder(TOP).folder(&format!("{TOP}/")).tar_gz()).is_ok());
    // Names that differ only in case are one file on macOS and Windows.
    for other in
        [format!("{TOP}/Metadata.json"), format!("{TOP}/ICON.svg"), format!("{}/metadata.json", TOP.to_uppercase())]
    {
        let e = refusal(&kafka().file(&other, b"{}").tar_gz());
        assert!(matches!(&e, DistributionError::CaseDuplicateEntry { .. }), "{other}: {e:?}");
    }
    // In a zip, names that differ only in spelling.
    let zip = kafka().file(&format!("{TOP}//metadata.json"), &metadata).zip();
    assert!(matches!(refusal(&zip), DistributionError::DuplicateEntry { .. }));
    // One file elsewhere as well: another Unicode form (APFS, NTFS), a case fold beyond ASCII,
    // trailing dots and spaces (Win32), in every format.
    for (first, second) in [
        (format!("{TOP}/caf\u{e9}.py"), format!("{TOP}/cafe\u{301}.py")),
        (format!("{TOP}/setup.py"), format!("{TOP}/\u{17f}etup.py")),
        (format!("{TOP}/lib.jar"), format!("{TOP}/lib.jar.")),
        (format!("{TOP}/lib.jar"), format!("{TOP}/lib.jar ")),
        (format!("{TOP}/notes.txt"), format!("{TOP}/notes.txt. .")),
    ] {
        let package = kafka().file(&first, b"a").file(&second, b"b");
        for bytes in [package.tar_gz(), package.zip()] {
            let e = refusal(&bytes);
            assert!(
                matches!(&e, DistributionError::CaseDuplicateEntry { .. } | DistributionError::DuplicateEntry { .. }),
                "{second}: {e:?}"
            );
        }
    }
}

/// A second metadata.json that Windows would extract over the first is refused.
#[test]
fn a_metadata_json_with_a_trailing_dot_is_the_metadata_json_on_windows() {
    let package = kafka().file(&format!("{TOP}/metadata.json."), b"{}");
    for bytes in [package.tar_gz(), package.zip()] {
        assert!(matches!(refusal(&bytes), DistributionError::CaseDuplicateEntry { .. }));
    }
}

/// The folder of a symbolic link, spelt in another case or Unicode form, is the link on the file
/// systems that fold names: nothing may lie under it either.
#[test]
fn nothing_lies_under_a_link_spelt_otherwise() {
    for under in [format!("{TOP}/OUT/x.sh"), format!("{TOP}/Out/x.sh"), format!("{TOP}/out./x.sh")] {
        let package = kafka().entry(&format!("{TOP}/out"), Entry::Symlink("libs".into())).file(&under, b"#!/bin/sh");
        let e = refusal(&package.tar_gz());
        assert!(matches!(e, DistributionError::UnsafeEntry { .. }), "{under}: {e:?}");
    }
}

#[test]
fn zips_whose_local_headers_disagree_with_the_central_directory_are_refused() {
    // The central directory says `libs/ok.sh`; the local header, which streaming extractors
    // follow, says a path outside the folder (same length, so every offset still holds).
    let listed = format!("{TOP}/libs/ok.sh");
    let evil = format!("{}tmp-evil.sh", "../".repeat((listed.len() - 11) / 3));
    let evil = format!("{}{evil}", "x".repeat(listed.len() - evil.len()));
    assert_eq!(evil.len(), listed.len());
    let zip = kafka().file(&listed, b"#!/bin/sh").zip();
    let mut patched = zip.clone();
    let at = patched.windows(listed.len()).position(|w| w == listed.as_bytes()).unwrap();
    patched[at..at + listed.len()].copy_from_slice(evil.as_bytes());
    unreadable(&patched, "inconsistency");

    // A local entry the central directory does not list.
    let unlisted = zip_with_unlisted_last_entry(&zip);
    assert!(read(&unlisted).is_err());
    unreadable(&unlisted, "missing from central directory");

    // The same name listed twice in the central directory.
    let twice = kafka().file(&format!("{TOP}/libs/aa.sh"), b"1").file(&format!("{TOP}/libs/bb.sh"), b"2").zip();
    let mut dup = twice.clone();
    let (cd_offset, _, _) = zip_directory(&twice);
    for from in [0, cd_offset] {
        let at = from + dup[from..].windows(5).position(|w| w == b"bb.sh").unwrap();
        dup[at..at + 5].copy_from_slice(b"aa.sh");
    }
    assert!(matches!(refusal(&dup), DistributionError::Unreadable(_) | DistributionError::DuplicateEntry { .. }));
}

#[test]
fn the_zip_central_directory_is_capped() {
    let zip = kafka().zip();
    let limits = Limits { max_zip_directory_bytes: 100, ..Limits::default() };
    let e = read_with(&zip, &limits).unwrap_err();
    assert!(matches!(e, ReadError::Invalid(DistributionError::ZipDirectoryTooLarge { limit: 100 })), "{e:?}");
    // An end record that declares more entries than allowed is refused before they are read.
    let (_, _, eocd) = zip_directory(&zip);
    let mut many = zip.clone();
    many[eocd + 8..eocd + 12].copy_from_slice(&[0x30, 0x75, 0x30, 0x75]);
    assert_eq!(refusal(&many), DistributionError::TooManyEntries { limit: 20_000 });
}

/// The end record is where readers look for it, the only one they could take, and declares the
/// directory that is there: otherwise the zip reader may find a directory the pre-check did not
/// bound (memory growing with the archive), or readers may disagree on the entries.
#[test]
fn the_zip_end_record_is_where_readers_look_and_declares_the_real_directory() {
    let zip = kafka().zip();
    let not_well_formed = |bytes: &[u8], why: &str| {
        let e = refusal(bytes);
        assert!(e.to_string().contains(why), "{why}: {e}");
    };
    let mut trailing = zip.clone();
    trailing.push(0);
    not_well_formed(&trailing, "not at the end of the file");
    // A second record, as a comment of the first, that a reader could take instead.
    let (_, _, eocd) = zip_directory(&zip);
    let mut decoy = zip.clone();
    let record = zip[eocd..eocd + 22].to_vec();
    decoy[eocd + 20..eocd + 22].copy_from_slice(&22u16.to_le_bytes());
    decoy.extend_from_slice(&record);
    not_well_formed(&decoy, "more than one end-of-central-directory record");
    // A directory declared smaller than it is.
    let (_, size, eocd) = zip_directory(&zip);
    let mut understated = zip.clone();
    understated[eocd + 12..eocd + 16].copy_from_slice(&((size - 46) as u32).to_le_bytes());
    not_well_formed(&understated, "not the size its end record declares");
    // Data before the archive (a self-extracting stub) moves the directory from where it says.
    let mut prefixed = b"MZ stub".to_vec();
    prefixed.extend_from_slice(&zip);
    assert!(read(&prefixed).is_err());
    assert!(read(&zip).is_ok());
}

#[test]
fn icons_together_are_capped() {
    let package = Package::multi_tenant("jdbc-connector", "1.0.0", &["postgres-connector", "mysql-connector"]);
    let limits = Limits { max_icons_total_bytes: ICON_SVG.len() as u64 + 1, ..Limits::default() };
    let e = read_with(&package.tar_gz(), &limits).unwrap_err();
    assert!(matches!(e, ReadError::Invalid(DistributionError::IconsTooLarge { .. })), "{e:?}");
    assert!(read(&package.tar_gz()).is_ok());
}

#[test]
fn messages_quote_paths_as_plain_text() {
    let e = refusal(&kafka().file("../\u{1b}[31mevil", b"x").tar_gz());
    assert_eq!(e.to_string(), "archive entry \"../<U+001B>[31mevil\" is unsafe: '..' in a path is not allowed");
}

#[test]
fn entries_under_a_symbolic_link_are_refused() {
    // An extractor that follows the link would write the file wherever it points.
    for package in [
        kafka()
            .entry(&format!("{TOP}/evil"), Entry::Symlink("/tmp".into()))
            .file(&format!("{TOP}/evil/pwned.sh"), b"x"),
        kafka().entry(&format!("{TOP}/a"), Entry::Symlink("../..".into())).file(&format!("{TOP}/a/b/c"), b"x"),
    ] {
        for bytes in [package.tar_gz(), package.zip()] {
            let e = refusal(&bytes);
            assert!(matches!(&e, DistributionError::UnsafeEntry { why, .. } if why.contains("symbolic link")), "{e:?}");
        }
    }
    // A link next to files, or a file whose name only starts like the link, is fine.
    let fine = kafka()
        .entry(&format!("{TOP}/current"), Entry::Symlink("libs".into()))
        .file(&format!("{TOP}/currently.txt"), b"x")
        .file(&format!("{TOP}/libs/a.jar"), b"x");
    assert!(read(&fine.tar_gz()).is_ok());
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
