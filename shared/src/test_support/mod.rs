//! Helpers for tests, here and in the tests crate: packages built in memory, packed as tar, tar.gz
//! or zip, including deliberately broken ones; and the store conformance suites.

#[cfg(all(feature = "aws-dynamodb", feature = "aws-s3"))]
pub mod aws;
pub mod conformance;
pub mod faults;
#[cfg(feature = "embedded")]
pub mod fuzz;

use std::io::{Cursor, Write};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
/// The tar entry types the raw builders take, for crates that do not depend on `tar`.
pub use tar::EntryType;

/// An RSA public key (PEM) whose private half nobody holds: for tests that need a key that
/// verifies no token.
pub const UNRELATED_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAn55Zcr1Bl/KOG442tUum
DlRC+H+HOWa1gohvEFoSgUOnp+fBrTvXeJeEu2zOXJ1gz/t4WNaFIsjKmw+Z2EOD
PDViuusBvlFLkB+R/vhdV4TBSsmGfMaPPIHoVr8MKz3M7cAOChhBpLX1ibLAmEQn
bE8WQE2MfNgsQyM7UacIlxKw/O/scinC8fg7cud25YPUWBTAuczKMxDWANU7xoHT
a+8rvMn10E0gRG4HH9EwwbECGdwh7lE6qP9tVISubWFeGjKoXmOMXjAD//WpGsIG
RamnrsuOqb+v1HEtoC2y5jUae69K2BnJFkhH7apnO6ZVfPQuHcVIqwSXWM1jwD9G
iQIDAQAB
-----END PUBLIC KEY-----
";

/// One entry of a package, in archive order.
#[derive(Debug, Clone)]
pub enum Entry {
    File(Vec<u8>),
    Folder,
    Symlink(String),
    HardLink(String),
    Fifo,
}

/// A connector distribution in memory: entries in archive order.
#[derive(Debug, Clone, Default)]
pub struct Package {
    pub entries: Vec<(String, Entry)>,
}

pub const ICON_SVG: &[u8] = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"/>";

/// The `metadata.json` of a single-tenant package.
pub fn single_tenant_metadata(id: &str, version: &str) -> Value {
    json!({
        "type": "connector",
        "metadata": {
            "id": id, "name": format!("{id} name"), "description": format!("{id} description"),
            "type": "source", "tenant": "single", "version": version, "category": "stream",
            "technology": "scala", "runtime": "flink", "licence": "MIT", "owner": "Sunbird",
            "main_class": "org.example.Main", "main_program": format!("{id}-{version}.jar"), "icon": "icon.svg"
        }
    })
}

/// The `metadata.json` of a multi-tenant package declaring `connectors`.
pub fn multi_tenant_metadata(id: &str, version: &str, connectors: &[&str]) -> Value {
    json!({
        "type": "connector",
        "metadata": {
            "id": id, "name": format!("{id} name"), "version": version, "tenant": "multiple",
            "type": "source", "category": "batch", "technology": "python", "runtime": "spark",
            "licence": "MIT", "owner": "Sunbird", "main_class": null, "main_program": "main.py"
        },
        "connectors": connectors.iter().map(|c| json!({
            "id": c, "name": format!("{c} name"), "description": format!("{c} description"), "icon": format!("{c}.svg")
        })).collect::<Vec<_>>()
    })
}

pub fn ui_config() -> Value {
    json!({
        "title": "Setup", "type": "object",
        "properties": {"zeta": {"type": "string", "title": "Z", "uiIndex": 0}, "alpha": {"type": "number", "title": "A", "uiIndex": 1}},
        "required": ["zeta"]
    })
}

impl Package {
    /// A valid single-tenant package `<id>-<version>/` with metadata, ui-config, icon and program.
    pub fn single_tenant(id: &str, version: &str) -> Self {
        let top = format!("{id}-{version}");
        Package::default()
            .folder(&top)
            .json(&format!("{top}/metadata.json"), &single_tenant_metadata(id, version))
            .json(&format!("{top}/ui-config.json"), &ui_config())
            .file(&format!("{top}/icon.svg"), ICON_SVG)
            .file(&format!("{top}/{id}-{version}.jar"), b"PK program bytes")
    }

    /// A valid multi-tenant package with one ui-config schema and one icon per connector.
    pub fn multi_tenant(id: &str, version: &str, connectors: &[&str]) -> Self {
        let top = format!("{id}-{version}");
        let ui: serde_json::Map<String, Value> = connectors.iter().map(|c| (c.to_string(), ui_config())).collect();
        let mut package = Package::default()
            .folder(&top)
            .json(&format!("{top}/metadata.json"), &multi_tenant_metadata(id, version, connectors))
            .json(&format!("{top}/ui-config.json"), &Value::Object(ui));
        for c in connectors {
            package = package.file(&format!("{top}/{c}.svg"), ICON_SVG);
        }
        package.file(&format!("{top}/main.py"), b"print('hello')")
    }

    pub fn entry(mut self, path: &str, entry: Entry) -> Self {
        self.entries.push((path.to_owned(), entry));
        self
    }

    pub fn file(self, path: &str, bytes: &[u8]) -> Self {
        self.entry(path, Entry::File(bytes.to_vec()))
    }

    pub fn json(self, path: &str, value: &Value) -> Self {
        self.file(path, &serde_json::to_vec_pretty(value).expect("JSON"))
    }

    pub fn folder(self, path: &str) -> Self {
        self.entry(path, Entry::Folder)
    }

    /// Drops every entry whose path ends with `suffix`.
    pub fn without(mut self, suffix: &str) -> Self {
        self.entries.retain(|(path, _)| !path.ends_with(suffix));
        self
    }

    /// Replaces the content of every file whose path ends with `suffix`.
    pub fn replace(mut self, suffix: &str, bytes: &[u8]) -> Self {
        for (path, entry) in &mut self.entries {
            if path.ends_with(suffix) {
                *entry = Entry::File(bytes.to_vec());
            }
        }
        self
    }

    pub fn tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            append_tar_entry(&mut builder, path, entry);
        }
        builder.into_inner().expect("tar")
    }

    pub fn tar_gz(&self) -> Vec<u8> {
        gzip(&self.tar())
    }

    pub fn zip(&self) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (path, entry) in &self.entries {
            match entry {
                Entry::File(bytes) => {
                    writer.start_file(path.as_str(), options).expect("zip entry");
                    writer.write_all(bytes).expect("zip write");
                }
                Entry::Folder => writer.add_directory(path.as_str(), options).expect("zip folder"),
                Entry::Symlink(target) | Entry::HardLink(target) => {
                    writer.add_symlink(path.as_str(), target.as_str(), options).expect("zip link")
                }
                Entry::Fifo => {}
            }
        }
        writer.finish().expect("zip").into_inner()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Appends an entry with its name written verbatim, so tests can build the unsafe names (`../x`,
/// `/etc/x`) that `tar::Builder` itself would refuse.
fn append_tar_entry(builder: &mut tar::Builder<Vec<u8>>, path: &str, entry: &Entry) {
    let (entry_type, data, link): (_, &[u8], _) = match entry {
        Entry::File(bytes) => (tar::EntryType::Regular, bytes, None),
        Entry::Folder => (tar::EntryType::Directory, &[], None),
        Entry::Symlink(target) => (tar::EntryType::Symlink, &[], Some(target)),
        Entry::HardLink(target) => (tar::EntryType::Link, &[], Some(target)),
        Entry::Fifo => (tar::EntryType::Fifo, &[], None),
    };
    let mut header = tar_header(entry_type, path, data.len() as u64);
    if let Some(target) = link {
        header.set_link_name_literal(target).expect("link name");
        header.set_cksum();
    }
    builder.append(&header, data).expect("tar entry");
}

/// A tar.gz with one entry that claims `size` bytes of zeros: a gzip bomb when `size` is large.
/// The zeros are streamed into the encoder, so building it needs no memory of that size.
pub fn gzip_bomb(top: &str, size: u64) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let mut header = tar::Header::new_gnu();
    header.set_path(format!("{top}/zeros.bin")).expect("path");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    encoder.write_all(header.as_bytes()).expect("gzip");
    let block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        encoder.write_all(&block[..n]).expect("gzip");
        left -= n as u64;
    }
    encoder.finish().expect("gzip")
}

/// A package shaped like the connectors in Obsrv's registry, for benchmarks and load: a ~3 KB SVG
/// icon (a ~4 KB data URI in each row), a ~10 KB ui-config schema, and a small program. Half the
/// connectors are `stream`, half `batch`.
pub fn realistic_package(connector: usize, version: &str) -> Package {
    let id = format!("bench-{connector:02}-connector");
    let top = format!("{id}-{version}");
    let mut metadata = single_tenant_metadata(&id, version);
    metadata["metadata"]["category"] = json!(if connector.is_multiple_of(2) { "stream" } else { "batch" });
    Package::default()
        .folder(&top)
        .json(&format!("{top}/metadata.json"), &metadata)
        .json(&format!("{top}/ui-config.json"), &realistic_ui_config(&id))
        .file(&format!("{top}/icon.svg"), realistic_icon(connector).as_bytes())
        .file(&format!("{top}/{id}-{version}.jar"), b"PK program bytes")
}

/// A multi-tenant package of `TENANTS` connectors shaped like `realistic_package`'s, each with an
/// icon of its own: `bench-<n>-connector` for n in `group * TENANTS ..`. For seeding large
/// registries in few registrations.
pub fn realistic_tenants(group: usize, version: &str) -> Package {
    const TENANTS: usize = crate::distribution::WriteBudget::MAX_CONNECTORS;
    let names: Vec<String> = (0..TENANTS).map(|i| format!("bench-{:04}-connector", group * TENANTS + i)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = format!("bench-group-{group:04}");
    let ui: serde_json::Map<String, Value> = names.iter().map(|n| (n.to_string(), realistic_ui_config(n))).collect();
    let ui = serde_json::to_vec_pretty(&Value::Object(ui)).expect("JSON");
    let mut package = Package::multi_tenant(&id, version, &names).replace("ui-config.json", &ui);
    for (i, name) in names.iter().enumerate() {
        package = package.replace(&format!("{name}.svg"), realistic_icon(group * TENANTS + i).as_bytes());
    }
    package
}

/// A ~3 KB SVG icon (a ~4 KB data URI in each row), different for each connector.
fn realistic_icon(connector: usize) -> String {
    let paths: String = (0..60)
        .map(|i| format!("<path d=\"M{i} {}L{} {}Z\" fill=\"#{:06x}\"/>", connector % 97, i * 3, i * 7, i * 40503))
        .collect();
    format!("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 256 256\">{paths}</svg>")
}

/// A ~10 KB ui-config schema of 80 settings.
fn realistic_ui_config(id: &str) -> Value {
    let properties: serde_json::Map<String, Value> = (0..80)
        .map(|i| {
            let field = json!({
                "type": "string", "title": format!("Setting {i}"), "uiIndex": i,
                "description": format!("How the connector treats setting number {i} of its source"),
                "default": format!("value-{i}")
            });
            (format!("setting_{i:02}"), field)
        })
        .collect();
    json!({"title": format!("{id} setup"), "type": "object", "properties": properties, "required": ["setting_00"]})
}

/// The benchmark catalog in registration order: 200 rows, 80 of them Live (40 connectors with
/// four versions each, then 40 with one), the shape the original service was measured on.
pub fn realistic_catalog() -> Vec<Package> {
    let versions = ["1.0.0", "1.1.0", "1.2.0", "2.0.0"];
    let mut packages = Vec::new();
    for connector in 0..80 {
        let count = if connector < 40 { versions.len() } else { 1 };
        packages.extend(versions[..count].iter().map(|v| realistic_package(connector, v)));
    }
    packages
}

/// A tar written block by block, for the headers `tar::Builder` will not write: PAX records,
/// GNU long names and global headers of any size, duplicate entries, data after the end.
#[derive(Debug, Clone, Default)]
pub struct RawTar(pub Vec<u8>);

impl RawTar {
    /// The package's entries, without their end marker.
    pub fn package(package: &Package) -> Self {
        let mut tar = package.tar();
        tar.truncate(tar.len() - 1024);
        Self(tar)
    }

    /// One header of `entry_type` named `name` (at most 99 bytes), then `data`, padded.
    pub fn entry(mut self, entry_type: tar::EntryType, name: &str, data: &[u8]) -> Self {
        self.0.extend_from_slice(tar_header(entry_type, name, data.len() as u64).as_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(tar::EntryType::Regular, name, data)
    }

    /// A PAX extended header (`x`) with these records, for the entry that follows.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Self {
        self.entry(tar::EntryType::XHeader, "PaxHeader", &pax_records(records))
    }

    /// A PAX global header (`g`).
    pub fn global(self, records: &[(&str, &[u8])]) -> Self {
        self.entry(tar::EntryType::XGlobalHeader, "GlobalHead", &pax_records(records))
    }

    /// A GNU long name (`L`) for the entry that follows.
    pub fn long_name(self, name: &[u8]) -> Self {
        let mut data = name.to_vec();
        data.push(0);
        self.entry(tar::EntryType::GNULongName, "././@LongLink", &data)
    }

    /// The end marker: two zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.0.resize(self.0.len() + 1024, 0);
        self.0
    }
}

/// A header whose name is written verbatim.
pub fn tar_header(entry_type: tar::EntryType, name: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let name = name.as_bytes();
    assert!(name.len() < 100, "test entry names stay short");
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_entry_type(entry_type);
    header.set_size(size);
    header.set_cksum();
    header
}

/// PAX records, `<length> <key>=<value>\n` each.
pub fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = key.len() + value.len() + 3;
        // The length counts its own digits.
        let mut length = body + body.to_string().len();
        if length.to_string().len() != body.to_string().len() {
            length += 1;
        }
        out.extend_from_slice(format!("{length} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// A tar.gz that holds one extension header of `entry_type` claiming `size` bytes, streamed (a
/// 1 GiB record costs ~1 MB), then the kafka package: the shape of a header that a reader which
/// buffers headers whole would hold in memory.
pub fn gzip_huge_header(entry_type: tar::EntryType, size: u64) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(tar_header(entry_type, "PaxHeader", size).as_bytes()).expect("gzip");
    let key = b"path=";
    let digits = format!("{size} ");
    encoder.write_all(digits.as_bytes()).expect("gzip");
    encoder.write_all(key).expect("gzip");
    let block = vec![b'a'; 1 << 20];
    let mut left = size.saturating_sub((digits.len() + key.len() + 1) as u64);
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        encoder.write_all(&block[..n]).expect("gzip");
        left -= n as u64;
    }
    encoder.write_all(b"\n").expect("gzip");
    let padding = (512 - size % 512) % 512;
    encoder.write_all(&vec![0; padding as usize]).expect("gzip");
    encoder.write_all(&Package::single_tenant("kafka-connector", "1.0.0").tar()).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Byte offsets of a zip's end records: (central directory offset, its size, the end of central
/// directory record's offset), for tests that edit a zip by hand.
pub fn zip_directory(zip: &[u8]) -> (usize, usize, usize) {
    let eocd = zip.windows(4).rposition(|w| w == b"PK\x05\x06").expect("an end of central directory record");
    let u32_at = |i: usize| u32::from_le_bytes(zip[i..i + 4].try_into().unwrap()) as usize;
    (u32_at(eocd + 16), u32_at(eocd + 12), eocd)
}

/// The zip without the central directory's last entry: its local header and data stay, listed
/// nowhere, as a streaming extractor would still find them.
pub fn zip_with_unlisted_last_entry(zip: &[u8]) -> Vec<u8> {
    let (cd_offset, cd_size, eocd) = zip_directory(zip);
    let u16_at = |i: usize| u16::from_le_bytes(zip[i..i + 2].try_into().unwrap()) as usize;
    let mut at = cd_offset;
    let mut last = at;
    while at < cd_offset + cd_size {
        last = at;
        at += 46 + u16_at(at + 28) + u16_at(at + 30) + u16_at(at + 32);
    }
    let removed = cd_offset + cd_size - last;
    let mut out = zip[..last].to_vec();
    let mut end = zip[eocd..].to_vec();
    let entries = u16::from_le_bytes([end[10], end[11]]) - 1;
    end[8..10].copy_from_slice(&entries.to_le_bytes());
    end[10..12].copy_from_slice(&entries.to_le_bytes());
    end[12..16].copy_from_slice(&((cd_size - removed) as u32).to_le_bytes());
    out.extend_from_slice(&end);
    out
}

/// A tar.gz of the kafka package followed by `count` entries, each named by a PAX path of
/// `path_bytes` bytes, streamed through the encoder (1000 paths of 128 KiB cost ~0.5 MB).
pub fn gzip_many_pax_paths(count: usize, path_bytes: usize) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let package = RawTar::package(&Package::single_tenant("kafka-connector", "1.0.0"));
    encoder.write_all(&package.0).expect("gzip");
    for i in 0..count {
        let path = format!("kafka-connector-1.0.0/{i}/{}", "p".repeat(path_bytes));
        let entry = RawTar::default().pax(&[("path", path.as_bytes())]).file("x", b"");
        encoder.write_all(&entry.0).expect("gzip");
    }
    encoder.write_all(&[0; 1024]).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A tar.gz of the kafka package followed by `count` PAX global headers of `comment_bytes`
/// each, streamed through the encoder.
pub fn gzip_many_global_headers(count: usize, comment_bytes: usize) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    let package = RawTar::package(&Package::single_tenant("kafka-connector", "1.0.0"));
    encoder.write_all(&package.0).expect("gzip");
    let global = RawTar::default().global(&[("comment", &vec![b'c'; comment_bytes])]);
    for _ in 0..count {
        encoder.write_all(&global.0).expect("gzip");
    }
    encoder.write_all(&[0; 1024]).expect("gzip");
    encoder.finish().expect("gzip")
}
