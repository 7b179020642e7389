//! The archive walk: one streaming pass over a tar (optionally gzipped) or the central directory
//! of a zip, keeping only the three kinds of file the registry needs.
//!
//! This module is the entry: it sniffs the format, runs the walk, and checks and resolves what the
//! walk kept (`metadata.json`, `ui-config.json`, the icons). The walk's bookkeeping, shared by both
//! formats, is in `walk`; each format's way of going through its entries in `tar` and `zip`; the
//! archive's digest in `hashing`.

mod hashing;
mod tar;
mod walk;
mod zip;

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use base64::Engine;
use serde_json::Value;

use self::hashing::{HashingReader, hash_file};
use self::tar::walk_tar;
pub(crate) use self::walk::normalize_path;
use self::walk::{Captured, Walk, digest};
use self::zip::walk_zip;
use super::{DistributionError, Limits, Metadata};
use crate::quoting::quote;

const METADATA_FILE: &str = "metadata.json";
const UI_CONFIG_FILE: &str = "ui-config.json";

/// What a valid distribution holds that the registry needs.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub metadata: Metadata,
    /// The whole of `ui-config.json`, key order kept.
    pub ui_config: Value,
    /// Icon files found, keyed by the path `metadata.json` gives for them.
    pub icons: BTreeMap<String, Icon>,
    /// Hex SHA-256 of the archive file.
    pub sha256: String,
    pub archive_bytes: u64,
    pub format: ArchiveFormat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icon {
    pub bytes: Vec<u8>,
}

impl Icon {
    /// The icon as a `data:` URI, the form rows carry it in.
    pub fn data_uri(&self, path: &str) -> String {
        let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        let mime = match extension.as_str() {
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "gif" => "image/gif",
            "webp" => "image/webp",
            "ico" => "image/x-icon",
            _ => "application/octet-stream",
        };
        format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(&self.bytes))
    }
}

/// Failure to read a distribution: the author's fault, or the machine's.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Invalid(#[from] DistributionError),
    /// The archive file itself could not be read (a local I/O fault, not a bad package).
    #[error("reading the archive file failed")]
    Io(#[source] io::Error),
}

/// Reads and validates the distribution in `file` (a staged file, or bytes in memory), from its start.
pub fn read_distribution(file: &mut (impl Read + Seek), limits: &Limits) -> Result<Distribution, ReadError> {
    let archive_bytes = file.seek(SeekFrom::End(0)).map_err(ReadError::Io)?;
    if archive_bytes > limits.max_archive_bytes {
        return Err(
            DistributionError::ArchiveTooLarge { actual: archive_bytes, limit: limits.max_archive_bytes }.into()
        );
    }
    file.seek(SeekFrom::Start(0)).map_err(ReadError::Io)?;
    let mut head = [0u8; 512];
    let head_len = read_up_to(file, &mut head).map_err(ReadError::Io)?;
    file.seek(SeekFrom::Start(0)).map_err(ReadError::Io)?;
    let format = ArchiveFormat::sniff(&head[..head_len])?;

    let mut walk = Walk::new(limits);
    let sha256 = match format {
        ArchiveFormat::Zip => {
            let sha256 = hash_file(file)?;
            walk_zip(file, &mut walk)?;
            sha256
        }
        ArchiveFormat::Tar | ArchiveFormat::TarGz => {
            let mut source = HashingReader::new(&mut *file);
            let outcome = walk_tar(&mut source, format, &mut walk);
            // Only now is it known whether a failure came from the file or from its content.
            if let Some(e) = source.failure.take() {
                return Err(ReadError::Io(e));
            }
            outcome?;
            io::copy(&mut source, &mut io::sink()).map_err(ReadError::Io)?;
            source.finish()
        }
    };

    // An empty file counts as a missing one, as the original's "missing or empty" rule says.
    let metadata_bytes = walk.metadata.take_content(METADATA_FILE, limits.max_metadata_bytes)?;
    let metadata_bytes = metadata_bytes.filter(|b| !is_blank(b)).ok_or(DistributionError::MissingMetadata)?;
    let metadata = Metadata::parse(&metadata_bytes)?;
    let source_folder = metadata.source_folder();
    if !walk.top_folders.contains(&digest(&source_folder)) {
        return Err(DistributionError::MissingSourceFolder(source_folder).into());
    }
    let ui_config_bytes = walk.ui_config.take_content(UI_CONFIG_FILE, limits.max_ui_config_bytes)?;
    let ui_config_bytes = ui_config_bytes.filter(|b| !is_blank(b)).ok_or(DistributionError::MissingUiConfig)?;
    let ui_config: Value =
        serde_json::from_slice(&ui_config_bytes).map_err(|e| DistributionError::UiConfigNotJson(e.to_string()))?;
    if matches!(&ui_config, Value::Object(m) if m.is_empty()) || ui_config.is_null() {
        return Err(DistributionError::MissingUiConfig.into());
    }

    let icons = resolve_icons(file, format, &metadata, &mut walk)?;
    Ok(Distribution { metadata, ui_config, icons, sha256, archive_bytes, format })
}

/// Finds each icon `metadata.json` names at `<source folder>/<icon>`: from what the first pass
/// kept, or, for the ones it could not know it would need, from a second pass.
fn resolve_icons(
    file: &mut (impl Read + Seek),
    format: ArchiveFormat,
    metadata: &Metadata,
    walk: &mut Walk,
) -> Result<BTreeMap<String, Icon>, ReadError> {
    let folder = metadata.source_folder();
    let mut wanted = BTreeMap::new();
    for icon in metadata.icon_paths() {
        if is_url(icon) {
            continue;
        }
        let inside = normalize_path(icon.as_bytes()).map_err(|_| {
            DistributionError::InvalidMetadata(format!(
                "icon {} must be a relative path inside the package",
                quote(icon)
            ))
        })?;
        wanted.insert(format!("{folder}/{inside}"), icon.to_owned());
    }
    let missing: Vec<String> = wanted.keys().filter(|p| !walk.icons.contains_key(*p)).cloned().collect();
    if !missing.is_empty() && walk.icon_capture_incomplete {
        file.seek(SeekFrom::Start(0)).map_err(ReadError::Io)?;
        let mut second = Walk::new(&walk.limits);
        second.wanted_icons = missing.into_iter().collect();
        second.icon_capture_incomplete = false;
        match format {
            ArchiveFormat::Zip => walk_zip(file, &mut second)?,
            ArchiveFormat::Tar | ArchiveFormat::TarGz => walk_tar(BufReader::new(&mut *file), format, &mut second)?,
        }
        walk.icons.extend(second.icons);
    }
    let mut icons = BTreeMap::new();
    let mut total = 0u64;
    for (path, name) in wanted {
        match walk.icons.remove(&path) {
            Some(Captured::Bytes(bytes)) => {
                total += bytes.len() as u64;
                if total > walk.limits.max_icons_total_bytes {
                    return Err(DistributionError::IconsTooLarge { limit: walk.limits.max_icons_total_bytes }.into());
                }
                icons.insert(name, Icon { bytes });
            }
            Some(Captured::TooLarge) => {
                return Err(
                    DistributionError::FileTooLarge { file: "icon", path, limit: walk.limits.max_icon_bytes }.into()
                );
            }
            Some(Captured::NotRegular(why)) => {
                return Err(DistributionError::NotARegularFile { file: "icon", path, why }.into());
            }
            // A missing icon leaves `iconurl` null, as in the original.
            None => {}
        }
    }
    Ok(icons)
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

pub(crate) fn is_url(icon: &str) -> bool {
    icon.starts_with("https://") || icon.starts_with("http://")
}

/// How an archive is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar,
    TarGz,
    Zip,
}

impl ArchiveFormat {
    fn sniff(head: &[u8]) -> Result<Self, DistributionError> {
        let unsupported = |what: &str| {
            DistributionError::Unreadable(format!("{what} archives are not supported; use .tar.gz, .tgz, .tar or .zip"))
        };
        match head {
            [0x1f, 0x8b, ..] => Ok(ArchiveFormat::TarGz),
            [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Ok(ArchiveFormat::Zip),
            [b'B', b'Z', b'h', ..] => Err(unsupported("bzip2")),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Err(unsupported("xz")),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Err(unsupported("zstd")),
            _ if head.len() == 512 && (&head[257..262] == b"ustar" || tar_checksum_ok(head)) => Ok(ArchiveFormat::Tar),
            [] => Err(DistributionError::Unreadable("the file is empty".into())),
            _ => Err(DistributionError::Unreadable("not a tar, tar.gz or zip archive".into())),
        }
    }
}

/// The v7 tar header checksum, for tars without the `ustar` magic.
fn tar_checksum_ok(header: &[u8]) -> bool {
    let field = &header[148..156];
    let text: String = field.iter().take_while(|b| **b != 0 && **b != b' ').map(|b| *b as char).collect();
    let Ok(expected) = u32::from_str_radix(text.trim(), 8) else { return false };
    let sum: u32 = header
        .iter()
        .enumerate()
        .map(|(i, b)| if (148..156).contains(&i) { u32::from(b' ') } else { u32::from(*b) })
        .sum();
    sum == expected && header.iter().any(|b| *b != 0)
}

fn read_up_to(file: &mut (impl Read + Seek), buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
