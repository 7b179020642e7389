//! The bodies of the fuzz targets (`fuzz/`), and their seeds. They live here so that the
//! regression test replays crash inputs through exactly the code the fuzzer ran.
//!
//! Each function panics when the registry breaks a promise for the input: a panic inside the
//! code under test, or an answer that a client must never get (a 5xx, a body that is not the
//! Obsrv envelope, rows inconsistent with the package).

use std::io::Cursor;
use std::time::Duration;

use lambda_http::Body;
use serde_json::{Value, json};

use super::{
    Entry, ICON_SVG, Package, RawTar, gzip, gzip_bomb, gzip_huge_header, multi_tenant_metadata, pax_records,
    single_tenant_metadata, zip_directory, zip_with_unlisted_last_entry,
};
use crate::api::{self, AppState, FilesState, RegisterState};
use crate::auth::Authenticator;
use crate::distribution::reader::ReadError;
use crate::distribution::{Limits, Metadata, build_rows, read_distribution};
use crate::domain::Timestamp;
use crate::registry::{Catalog, Registrar};

/// Limits small enough that one input cannot take the fuzzer's time; the caps on headers, paths
/// and the zip directory are the registry's own, so the fuzzer's memory bound checks them.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_archive_bytes: 4 << 20,
        max_uncompressed_bytes: 16 << 20,
        max_entries: 2_000,
        max_metadata_bytes: 64 << 10,
        max_ui_config_bytes: 256 << 10,
        max_icon_bytes: 64 << 10,
        ..Limits::default()
    }
}

/// The archive reader and row construction over arbitrary bytes.
pub fn distribution(data: &[u8]) {
    match read_distribution(&mut Cursor::new(data), &fuzz_limits()) {
        Ok(distribution) => {
            let rows = match build_rows(&distribution, "fuzz.tar_000000.gz", Timestamp::now()) {
                Ok(rows) => rows,
                Err(e) => return assert!(!e.to_string().is_empty()),
            };
            assert_eq!(rows.len(), distribution.metadata.connectors.len());
            for row in &rows {
                let id = row.id.as_str();
                assert!(id.ends_with(&format!("-{}", distribution.metadata.version)), "{id}");
            }
        }
        Err(ReadError::Invalid(e)) => assert!(!e.to_string().is_empty()),
        Err(ReadError::Io(e)) => panic!("reading from memory cannot fail: {e}"),
    }
}

/// Archives built from `data` read as a program, so that the fuzzer explores what random bytes
/// rarely reach: sequences of tar headers (PAX records, GNU long names and links, global headers,
/// entries at one path, data after the end) and zips whose local headers were edited apart from
/// their central directory. Every archive built goes through `distribution`.
///
/// The first byte picks the container (plain tar, tar.gz, or zip); then each operation is a tag
/// byte, a length byte and that many payload bytes (a zip's operations are 3-byte patches: a
/// 16-bit offset and a byte).
pub fn archive_structure(data: &[u8]) {
    if let Some(archive) = structured_archive(data) {
        distribution(&archive);
    }
}

/// The archive `archive_structure` builds from `data` (also the differential test's generator).
/// Beside the valid package, operations add: entries at the names extractors fold together (case,
/// Unicode forms, trailing dots), extension headers, entries that are not files but carry data;
/// zips get patches, trailing bytes, a second end record or a directory declared smaller than it is.
pub fn structured_archive(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, mut ops) = data.split_first()?;
    let package = Package::single_tenant("kafka-connector", "1.0.0");
    if mode % 3 == 2 {
        let mut zip = package.file("kafka-connector-1.0.0/libs/run.sh", b"#!/bin/sh").zip();
        if mode & 4 != 0 {
            zip = zip_with_unlisted_last_entry(&zip);
        }
        let (cd_offset, cd_size, eocd) = zip_directory(&zip);
        match mode / 16 % 4 {
            // Bytes after the end record, or a second record as its comment.
            1 => zip.extend_from_slice(ops.get(..8).unwrap_or(ops)),
            2 => {
                let record = zip[eocd..eocd + 22].to_vec();
                zip[eocd + 20..eocd + 22].copy_from_slice(&22u16.to_le_bytes());
                zip.extend_from_slice(&record);
            }
            // A directory declared smaller than it is.
            3 => zip[eocd + 12..eocd + 16].copy_from_slice(&(cd_size.saturating_sub(1) as u32).to_le_bytes()),
            _ => {}
        }
        for patch in ops.chunks_exact(3) {
            // Mostly the local headers and data, where the central directory does not look.
            let region = if mode & 8 != 0 { zip.len() } else { cd_offset };
            let at = usize::from(u16::from_le_bytes([patch[0], patch[1]])) % region.max(1);
            zip[at] = patch[2];
        }
        return Some(zip);
    }
    const NAMES: [&str; 12] = [
        "metadata.json",
        "ui-config.json",
        "icon.svg",
        "libs/a.jar",
        "../x",
        "./icon.svg",
        "Metadata.JSON",
        "metadata.json.",
        "caf\u{e9}.py",
        "cafe\u{301}.py",
        "\u{17f}etup.py",
        "libs/a.jar/",
    ];
    let mut tar = RawTar::package(&package);
    while let [tag, len, rest @ ..] = ops {
        let (payload, rest) = rest.split_at(usize::from(*len).min(rest.len()));
        ops = rest;
        let pick = usize::from(payload.first().copied().unwrap_or(0));
        let name = format!("kafka-connector-1.0.0/{}", NAMES[pick % NAMES.len()]);
        tar = match tag % 16 {
            0 => tar.file(&name, payload),
            1 => tar.pax(&[("path", payload)]),
            2 => tar.entry(tar::EntryType::XHeader, "PaxHeader", payload),
            3 => tar.entry(tar::EntryType::XGlobalHeader, "GlobalHead", payload),
            4 => tar.long_name(payload),
            5 => tar.entry(tar::EntryType::GNULongLink, "././@LongLink", payload),
            6 => tar.entry(tar::EntryType::Directory, &name, &[]),
            7 => tar.pax(&[("size", payload)]),
            // Around the cap on headers: up to 64 KiB and a little more.
            8 => tar.pax(&[("path", &payload.repeat(usize::from(*len) + 1))]),
            9 => tar.global(&[("comment", &payload.repeat(usize::from(*len) + 1))]),
            // Entries that are not files, carrying data (a hidden archive, for one).
            10 => tar.entry(tar::EntryType::Directory, &name, payload),
            11 => tar.entry(tar::EntryType::Symlink, &name, payload),
            12 => tar.entry(tar::EntryType::Link, &name, payload),
            13 => tar.entry(
                [tar::EntryType::Fifo, tar::EntryType::Char, tar::EntryType::Block][pick % 3],
                &name,
                &RawTar::default().file("kafka-connector-1.0.0/metadata.json", payload).finish(),
            ),
            14 => tar.entry(tar::EntryType::Regular, &format!("{name}/"), payload),
            _ => {
                tar.0.extend_from_slice(payload);
                tar
            }
        };
    }
    let mut bytes = tar.finish();
    if mode & 4 != 0 {
        bytes.extend_from_slice(&[1; 512]);
    }
    if mode % 3 == 1 {
        let mut gz = gzip(&bytes);
        if mode & 8 != 0 {
            gz.extend_from_slice(&gzip(b"second member"));
        }
        Some(gz)
    } else {
        Some(bytes)
    }
}

/// `metadata.json` validation over arbitrary bytes.
pub fn metadata(data: &[u8]) {
    if let Ok(metadata) = Metadata::parse(data) {
        assert!(!metadata.connectors.is_empty());
        let folder = metadata.source_folder();
        assert!(!folder.contains('/') && folder != ".." && folder != ".", "{folder:?}");
        let _ = metadata.icon_paths();
    }
}

/// The request parsers: every route's handler, behind the router, over an embedded store.
pub struct ApiHarness {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    _data: tempfile::TempDir,
}

impl ApiHarness {
    pub fn new() -> Self {
        let data = tempfile::tempdir().expect("temporary folder");
        let (archives, rows) =
            crate::adapters::embedded::open_stores(data.path(), "http://127.0.0.1:3000").expect("embedded stores");
        let state = AppState {
            register: RegisterState {
                registrar: Registrar::new(archives.clone(), rows.clone(), fuzz_limits()),
                max_body_bytes: 4 << 20,
            },
            catalog: Catalog::new(rows),
            files: FilesState { archives, expiry: Duration::from_secs(600) },
            auth: Authenticator::Open,
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Self { runtime, state, _data: data }
    }

    /// `data` is a request written like HTTP/1.1 without the version: `METHOD TARGET`, header
    /// lines, a blank line, the body. Inputs that are not even that are skipped.
    pub fn request(&self, data: &[u8]) {
        let Some(request) = parse_request(data) else { return };
        let response = self.runtime.block_on(api::handle(&self.state, request));
        let status = response.status();
        assert!(!status.is_server_error(), "{status} for {:?}", String::from_utf8_lossy(data));
        let body = match response.body() {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => panic!("an answer without a body"),
        };
        let envelope: Value = serde_json::from_slice(body).expect("the answer is JSON");
        for field in ["id", "ver", "ts", "params", "responseCode"] {
            assert!(envelope.get(field).is_some(), "no {field} in {envelope}");
        }
    }
}

impl Default for ApiHarness {
    fn default() -> Self {
        Self::new()
    }
}

fn parse_request(data: &[u8]) -> Option<lambda_http::Request> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(Body::Binary(body.to_vec())).ok()
}

/// Starting inputs for each target: the shapes of real packages and requests, and the broken
/// ones the tests know about, so the fuzzer starts from the interesting paths.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let single = Package::single_tenant("kafka-connector", "1.0.0");
    let multi = Package::multi_tenant("object-store-connector", "0.1.0", &["aws-s3-connector", "azure-blob-connector"]);
    let top = "kafka-connector-1.0.0";
    let archives: Vec<(&str, Vec<u8>)> = vec![
        ("single.tar.gz", single.tar_gz()),
        ("single.tar", single.tar()),
        ("single.zip", single.zip()),
        ("multi.tar.gz", multi.tar_gz()),
        ("multi.zip", multi.zip()),
        ("traversal.tar.gz", single.clone().file("../escape.txt", b"x").tar_gz()),
        ("absolute.tar", single.clone().file("/etc/passwd", b"x").tar()),
        (
            "symlink.tar.gz",
            single.clone().entry(&format!("{top}/icon.svg"), Entry::Symlink("/etc/passwd".into())).tar_gz(),
        ),
        ("hardlink.tar", single.clone().entry(&format!("{top}/lib.jar"), Entry::HardLink("../x".into())).tar()),
        ("fifo.tar", single.clone().entry(&format!("{top}/pipe"), Entry::Fifo).tar()),
        ("no-metadata.tar.gz", single.clone().without("metadata.json").tar_gz()),
        ("bad-metadata.zip", single.clone().replace("metadata.json", b"{not json").zip()),
        ("bad-ui-config.tar.gz", single.clone().replace("ui-config.json", b"[]").tar_gz()),
        ("bomb.tar.gz", gzip_bomb(top, 64 << 20)),
        ("truncated.tar.gz", single.tar_gz()[..200].to_vec()),
        ("double-gzip.tar.gz", gzip(&single.tar_gz())),
    ];
    seeds.extend(archives.into_iter().map(|(name, bytes)| ("distribution", name.to_owned(), bytes)));

    // Hostile headers and layouts, each one a class the reader bounds or refuses.
    let base = || RawTar::package(&single);
    let long_path = format!("{top}/{}", "p".repeat(70_000));
    let twice =
        single.clone().file(&format!("{top}/libs/aa.jar"), b"1").file(&format!("{top}/libs/bb.jar"), b"2").zip();
    let (cd_offset, _, _) = zip_directory(&twice);
    let mut local_renamed = twice.clone();
    let at = local_renamed.windows(6).position(|w| w == b"bb.jar").expect("name");
    local_renamed[at..at + 6].copy_from_slice(b"../../");
    let mut listed_twice = twice.clone();
    for from in [0, cd_offset] {
        let at = from + listed_twice[from..].windows(6).position(|w| w == b"bb.jar").expect("name");
        listed_twice[at..at + 6].copy_from_slice(b"aa.jar");
    }
    let mut trailing = single.tar();
    trailing.extend_from_slice(&base().file(&format!("{top}/metadata.json"), b"{}").finish());
    let mut second_member = single.tar_gz();
    second_member.extend_from_slice(&gzip(&single.tar()));
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "pax-path.tar",
            base().pax(&[("path", format!("{top}/libs/x.jar").as_bytes()), ("mtime", b"1.5")]).file("x", b"").finish(),
        ),
        ("pax-size.tar", base().pax(&[("size", b"3")]).file(&format!("{top}/libs/x.jar"), b"abc").finish()),
        ("pax-long-path.tar.gz", gzip(&base().pax(&[("path", long_path.as_bytes())]).file("x", b"").finish())),
        ("pax-huge.tar.gz", gzip_huge_header(tar::EntryType::XHeader, 64 << 20)),
        (
            "pax-records.tar",
            base()
                .entry(
                    tar::EntryType::XHeader,
                    "PaxHeader",
                    &pax_records(&[("path", b"a"), ("linkpath", b"b"), ("uid", b"0")]),
                )
                .file("x", b"")
                .finish(),
        ),
        (
            "gnu-long-name.tar",
            base().long_name(format!("{top}/{}/a.jar", "d".repeat(300)).as_bytes()).file("x", b"").finish(),
        ),
        ("gnu-long-name-huge.tar.gz", gzip_huge_header(tar::EntryType::GNULongName, 64 << 20)),
        (
            "gnu-long-link.tar",
            base()
                .entry(tar::EntryType::GNULongLink, "././@LongLink", b"target\0")
                .entry(tar::EntryType::Symlink, &format!("{top}/l"), b"")
                .finish(),
        ),
        ("global-comment.tar", base().global(&[("comment", b"0123456789abcdef")]).finish()),
        ("global-path.tar", base().global(&[("path", b"evil")]).file(&format!("{top}/a"), b"").finish()),
        ("globals-many.tar.gz", gzip(&(0..3000).fold(base(), |t, _| t.global(&[("comment", b"x")])).finish())),
        ("duplicate-metadata.tar.gz", single.clone().json(&format!("{top}/metadata.json"), &json!({})).tar_gz()),
        ("duplicate-icon.zip", single.clone().file(&format!("{top}//icon.svg"), ICON_SVG).zip()),
        ("trailing.tar", trailing),
        ("second-member.tar.gz", second_member),
        ("zip-local-renamed.zip", local_renamed),
        ("zip-unlisted.zip", zip_with_unlisted_last_entry(&twice)),
        ("zip-listed-twice.zip", listed_twice),
    ];
    seeds.extend(hostile.into_iter().map(|(name, bytes)| ("distribution", name.to_owned(), bytes)));

    // Programs for `archive_structure`: mode byte, then (tag, length, payload) operations.
    let programs: Vec<(&str, Vec<u8>)> = vec![
        ("pax-path", [&[0u8, 1, 9][..], b"../escape"].concat()),
        ("pax-near-cap", vec![1, 8, 255, b'p']),
        ("globals", vec![1, 9, 255, b'c', 9, 255, b'c', 3, 4, b'5', b' ', b'a', b'\n']),
        ("long-names", vec![0, 4, 3, b'a', b'/', b'b', 4, 1, b'c', 0, 1, 0]),
        ("duplicates", vec![4, 0, 1, 0, 0, 1, 5, 6, 1, 2]),
        ("gzip-second-member", vec![13, 0, 1, 3]),
        ("zip-patched", vec![2, 30, 0, b'.', 31, 0, b'.', 32, 0, b'/']),
        ("zip-unlisted", vec![6]),
    ];
    seeds.extend(programs.into_iter().map(|(name, bytes)| ("archive_structure", name.to_owned(), bytes)));

    let documents = [
        ("single.json", single_tenant_metadata("kafka-connector", "1.0.0")),
        (
            "multi.json",
            multi_tenant_metadata("object-store-connector", "0.1.0", &["aws-s3-connector", "gcs-connector"]),
        ),
        ("empty.json", json!({})),
        ("array.json", json!([1, 2])),
    ];
    seeds.extend(
        documents.into_iter().map(|(name, value)| ("metadata", name.to_owned(), value.to_string().into_bytes())),
    );

    let list = |request: Value| {
        json!({"id": "api.connectors.list", "ver": "v2", "ts": "2024-04-10T16:10:50+05:30",
               "params": {"msgid": "4a7f14c3-d61e-4d4f-be78-181834eeff6d"}, "request": request})
        .to_string()
    };
    let mut multipart = b"POST /v2/connector/register\ncontent-type: multipart/form-data; boundary=B\n\n--B\r\n\
        Content-Disposition: form-data; name=\"file\"; filename=\"k.tar.gz\"\r\n\r\n"
        .to_vec();
    multipart.extend_from_slice(&single.tar_gz());
    multipart.extend_from_slice(b"\r\n--B--\r\n");
    let requests: Vec<(&str, Vec<u8>)> = vec![
        ("read", b"GET /v2/connectors/read/kafka-connector-1.0.0?mode=edit\n\n".to_vec()),
        ("list", format!("POST /v2/connectors/list\ncontent-type: application/json\n\n{}", list(json!({"filters": {"status": ["Live"], "category": ["stream"]}, "limit": 10, "offset": 0}))).into_bytes()),
        ("list-empty", format!("POST /v2/connectors/list\ncontent-type: application/json\n\n{}", list(json!({}))).into_bytes()),
        ("generate-url", format!("POST /v2/files/generate-url\ncontent-type: application/json\n\n{}", json!({"id": "api.files.generate-url", "ver": "v2", "ts": "2026-11-28T13:00:00+00:00", "params": {"msgid": "m"}, "request": {"files": ["k.tar.gz"], "access": "write", "type": "connector"}})).into_bytes()),
        ("register-by-reference", format!("POST /v2/connector/register\ncontent-type: application/json\n\n{}", json!({"id": "api.connector.register", "request": {"relative_path": "kafka-connector.tar_1a2b3c.gz"}})).into_bytes()),
        ("register-multipart", multipart),
        ("icon", format!("GET /v2/connectors/read/x\n\n{}", String::from_utf8_lossy(ICON_SVG)).into_bytes()),
    ];
    seeds.extend(requests.into_iter().map(|(name, bytes)| ("api_request", name.to_owned(), bytes)));
    seeds
}

/// Every seed and every committed crash input of `target`, for replaying in tests.
pub fn replay(target: &str, inputs: impl IntoIterator<Item = Vec<u8>>) {
    let harness = (target == "api_request").then(ApiHarness::new);
    for input in inputs {
        match target {
            "distribution" => distribution(&input),
            "archive_structure" => archive_structure(&input),
            "metadata" => metadata(&input),
            "api_request" => harness.as_ref().expect("harness").request(&input),
            other => panic!("no fuzz target {other}"),
        }
    }
}
