//! The archive walk: one streaming pass over a tar (optionally gzipped) or the central directory
//! of a zip, keeping only the three kinds of file the registry needs.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use base64::Engine;
use flate2::read::MultiGzDecoder;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{DistributionError, Limits, Metadata};

const METADATA_FILE: &str = "metadata.json";
const UI_CONFIG_FILE: &str = "ui-config.json";
/// After a tar's end marker only block padding should follow; more is refused, so a stream of
/// zeros behind an empty tar cannot keep the reader busy.
const MAX_TRAILING_BYTES: u64 = 1024 * 1024;
/// Icons met before `metadata.json` says which ones it wants are kept on speculation, within this
/// budget; past it a second pass looks for the missing ones.
const SPECULATIVE_ICON_BUDGET: u64 = 8 * 1024 * 1024;

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
    let format = Format::sniff(&head[..head_len])?;

    let mut walk = Walk::new(limits);
    let sha256 = match format {
        Format::Zip => {
            let sha256 = hash_file(file)?;
            walk_zip(file, &mut walk)?;
            sha256
        }
        Format::Tar | Format::TarGz => {
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
    if !walk.top_folders.contains(&source_folder) {
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
    Ok(Distribution { metadata, ui_config, icons, sha256, archive_bytes })
}

/// Finds each icon `metadata.json` names at `<source folder>/<icon>`: from what the first pass
/// kept, or, for the ones it could not know it would need, from a second pass.
fn resolve_icons(
    file: &mut (impl Read + Seek),
    format: Format,
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
            DistributionError::InvalidMetadata(format!("icon {icon:?} must be a relative path inside the package"))
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
            Format::Zip => walk_zip(file, &mut second)?,
            Format::Tar | Format::TarGz => walk_tar(BufReader::new(&mut *file), format, &mut second)?,
        }
        walk.icons.extend(second.icons);
    }
    let mut icons = BTreeMap::new();
    for (path, name) in wanted {
        match walk.icons.remove(&path) {
            Some(Captured::Bytes(bytes)) => {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Tar,
    TarGz,
    Zip,
}

impl Format {
    fn sniff(head: &[u8]) -> Result<Self, DistributionError> {
        let unsupported = |what: &str| {
            DistributionError::Unreadable(format!("{what} archives are not supported; use .tar.gz, .tgz, .tar or .zip"))
        };
        match head {
            [0x1f, 0x8b, ..] => Ok(Format::TarGz),
            [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Ok(Format::Zip),
            [b'B', b'Z', b'h', ..] => Err(unsupported("bzip2")),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Err(unsupported("xz")),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Err(unsupported("zstd")),
            _ if head.len() == 512 && (&head[257..262] == b"ustar" || tar_checksum_ok(head)) => Ok(Format::Tar),
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

/// The best candidate so far for a file looked up by name anywhere in the archive: the shallowest
/// wins, the first of equals.
#[derive(Default)]
struct Candidate {
    depth: usize,
    path: String,
    content: Option<Captured>,
}

enum Captured {
    Bytes(Vec<u8>),
    TooLarge,
    NotRegular(&'static str),
}

impl Candidate {
    fn wants(&self, depth: usize) -> bool {
        self.content.is_none() || depth < self.depth
    }

    fn take_content(&mut self, file: &'static str, limit: u64) -> Result<Option<Vec<u8>>, DistributionError> {
        let path = std::mem::take(&mut self.path);
        match self.content.take() {
            None => Ok(None),
            Some(Captured::Bytes(bytes)) => Ok(Some(bytes)),
            Some(Captured::TooLarge) => Err(DistributionError::FileTooLarge { file, path, limit }),
            Some(Captured::NotRegular(why)) => Err(DistributionError::NotARegularFile { file, path, why }),
        }
    }
}

/// What one pass over the entries has found.
struct Walk {
    limits: Limits,
    entries: u64,
    uncompressed: u64,
    top_folders: HashSet<String>,
    metadata: Candidate,
    ui_config: Candidate,
    /// Icon-looking files kept on speculation (first pass) or the exact ones sought (second pass).
    icons: BTreeMap<String, Captured>,
    icon_bytes_kept: u64,
    icon_capture_incomplete: bool,
    /// On a second pass: the only paths worth keeping.
    wanted_icons: HashSet<String>,
}

enum Kind {
    File,
    Folder,
    Other(&'static str),
}

impl Walk {
    fn new(limits: &Limits) -> Self {
        Self {
            limits: *limits,
            entries: 0,
            uncompressed: 0,
            top_folders: HashSet::new(),
            metadata: Candidate::default(),
            ui_config: Candidate::default(),
            icons: BTreeMap::new(),
            icon_bytes_kept: 0,
            icon_capture_incomplete: false,
            wanted_icons: HashSet::new(),
        }
    }

    fn second_pass(&self) -> bool {
        !self.wanted_icons.is_empty()
    }

    /// Accounts for one entry and keeps its content if it is wanted. `read` yields the content
    /// (at most `limit + 1` bytes are ever asked of it).
    fn visit(
        &mut self,
        raw_path: &[u8],
        kind: Kind,
        size: u64,
        read: &mut dyn FnMut(u64) -> io::Result<Vec<u8>>,
    ) -> Result<(), ReadError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(DistributionError::TooManyEntries { limit: self.limits.max_entries }.into());
        }
        self.uncompressed = self.uncompressed.saturating_add(size);
        if self.uncompressed > self.limits.max_uncompressed_bytes {
            return Err(DistributionError::UncompressedTooLarge { limit: self.limits.max_uncompressed_bytes }.into());
        }
        let path = normalize_path(raw_path).map_err(|why| DistributionError::UnsafeEntry {
            path: String::from_utf8_lossy(raw_path).into_owned(),
            why,
        })?;
        if path.is_empty() {
            return Ok(());
        }
        let depth = path.split('/').count();
        if let Some((top, _)) = path.split_once('/') {
            self.top_folders.insert(top.to_owned());
        } else if matches!(kind, Kind::Folder) {
            self.top_folders.insert(path.clone());
        }
        if matches!(kind, Kind::Folder) {
            return Ok(());
        }
        let name = path.rsplit('/').next().unwrap_or_default();

        if self.second_pass() {
            if self.wanted_icons.contains(&path) {
                let captured = capture(&kind, size, self.limits.max_icon_bytes, read)?;
                self.icons.insert(path, captured);
            }
            return Ok(());
        }
        let limits = self.limits;
        for (candidate, file_name, limit) in [
            (&mut self.metadata, METADATA_FILE, limits.max_metadata_bytes),
            (&mut self.ui_config, UI_CONFIG_FILE, limits.max_ui_config_bytes),
        ] {
            if name == file_name && candidate.wants(depth) {
                let content = capture(&kind, size, limit, read)?;
                *candidate = Candidate { depth, path: path.clone(), content: Some(content) };
                if let Some(Captured::TooLarge) = candidate.content {
                    return Err(DistributionError::FileTooLarge { file: file_name, path, limit }.into());
                }
                return Ok(());
            }
        }
        if depth >= 2 && looks_like_icon(name) && !self.icons.contains_key(&path) {
            if matches!(kind, Kind::File) && size > limits.max_icon_bytes {
                // Kept as "too large" so that naming it as the icon gives a precise error.
                self.icons.insert(path, Captured::TooLarge);
            } else if self.icon_bytes_kept + size <= SPECULATIVE_ICON_BUDGET {
                self.icon_bytes_kept += size;
                let captured = capture(&kind, size, limits.max_icon_bytes, read)?;
                self.icons.insert(path, captured);
            } else {
                self.icon_capture_incomplete = true;
            }
        } else if depth >= 2 {
            // Any other file could still be named as an icon (any extension is allowed).
            self.icon_capture_incomplete = true;
        }
        Ok(())
    }
}

fn looks_like_icon(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".svg", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico"].iter().any(|e| lower.ends_with(e))
}

fn capture(
    kind: &Kind,
    size: u64,
    limit: u64,
    read: &mut dyn FnMut(u64) -> io::Result<Vec<u8>>,
) -> Result<Captured, ReadError> {
    match kind {
        Kind::Other(why) => Ok(Captured::NotRegular(why)),
        Kind::Folder => Ok(Captured::NotRegular("a folder")),
        Kind::File if size > limit => Ok(Captured::TooLarge),
        Kind::File => {
            let bytes = read(limit).map_err(|e| DistributionError::Unreadable(describe_io(&e)))?;
            // A zip may declare a smaller size than it inflates to.
            if bytes.len() as u64 > limit { Ok(Captured::TooLarge) } else { Ok(Captured::Bytes(bytes)) }
        }
    }
}

/// Turns an entry name into `a/b/c`, refusing absolute paths and `..` anywhere. Back slashes count
/// as separators here, so `..\x` is refused too.
pub(crate) fn normalize_path(raw: &[u8]) -> Result<String, &'static str> {
    let text = String::from_utf8_lossy(raw);
    if text.starts_with('/') || text.starts_with('\\') {
        return Err("absolute paths are not allowed");
    }
    if text.len() >= 2 && text.as_bytes()[1] == b':' && text.as_bytes()[0].is_ascii_alphabetic() {
        return Err("absolute paths are not allowed");
    }
    if text.contains('\0') {
        return Err("NUL in a path is not allowed");
    }
    let mut parts = Vec::new();
    for part in text.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err("'..' in a path is not allowed"),
            _ => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

fn walk_tar<R: Read>(source: R, format: Format, walk: &mut Walk) -> Result<(), ReadError> {
    let unreadable = |e: io::Error| ReadError::from(DistributionError::Unreadable(describe_io(&e)));
    let reader: Box<dyn Read + '_> = match format {
        Format::TarGz => Box::new(MultiGzDecoder::new(source)),
        _ => Box::new(BufReader::with_capacity(64 * 1024, source)),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Folder,
            tar::EntryType::Symlink => Kind::Other("a symbolic link"),
            tar::EntryType::Link => Kind::Other("a hard link"),
            tar::EntryType::Char | tar::EntryType::Block => Kind::Other("a device file"),
            tar::EntryType::Fifo => Kind::Other("a named pipe"),
            tar::EntryType::XGlobalHeader => continue,
            _ => Kind::Other("an unsupported kind of entry"),
        };
        let size = entry.size();
        let path = entry.path_bytes().into_owned();
        let mut read = |limit: u64| {
            let mut buf = Vec::with_capacity(size.min(limit) as usize);
            (&mut entry).take(limit + 1).read_to_end(&mut buf)?;
            Ok(buf)
        };
        walk.visit(&path, kind, size, &mut read)?;
    }
    if walk.second_pass() {
        return Ok(());
    }
    // Read past the end marker to the end of the stream, so a truncated or corrupt gzip is caught
    // (its CRC is checked at the end), but only as far as block padding can reach.
    let mut rest = archive.into_inner().take(MAX_TRAILING_BYTES + 1);
    let trailing = io::copy(&mut rest, &mut io::sink()).map_err(unreadable)?;
    if trailing > MAX_TRAILING_BYTES {
        return Err(DistributionError::Unreadable("unexpected data after the end of the tar archive".into()).into());
    }
    Ok(())
}

fn walk_zip(file: &mut (impl Read + Seek), walk: &mut Walk) -> Result<(), ReadError> {
    let unreadable = |e: zip::result::ZipError| ReadError::from(DistributionError::Unreadable(e.to_string()));
    let mut archive = zip::ZipArchive::new(BufReader::new(&mut *file)).map_err(unreadable)?;
    if archive.len() as u64 > walk.limits.max_entries {
        return Err(DistributionError::TooManyEntries { limit: walk.limits.max_entries }.into());
    }
    for index in 0..archive.len() {
        let (path, kind, size) = {
            let entry = archive.by_index_raw(index).map_err(unreadable)?;
            let kind = if entry.is_dir() {
                Kind::Folder
            } else if entry.is_symlink() {
                Kind::Other("a symbolic link")
            } else if entry.unix_mode().is_some_and(|m| m & 0o170000 != 0 && m & 0o170000 != 0o100000) {
                Kind::Other("a special file")
            } else {
                Kind::File
            };
            (entry.name_raw().to_vec(), kind, entry.size())
        };
        let mut read = |limit: u64| {
            let entry = archive.by_index(index).map_err(io::Error::other)?;
            let mut buf = Vec::with_capacity(size.min(limit) as usize);
            entry.take(limit + 1).read_to_end(&mut buf)?;
            Ok(buf)
        };
        walk.visit(&path, kind, size, &mut read)?;
    }
    Ok(())
}

fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "the archive is truncated".to_owned(),
        _ => {
            let text = e.to_string();
            if text.contains("incomplete deflate stream") || text.contains("failed to read entire block") {
                "the archive is truncated".to_owned()
            } else if text.contains("corrupt deflate stream") || text.contains("invalid gzip header") {
                "the archive is corrupt".to_owned()
            } else {
                text
            }
        }
    }
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

fn hash_file(file: &mut (impl Read + Seek)) -> Result<String, ReadError> {
    let mut reader = HashingReader::new(&mut *file);
    io::copy(&mut reader, &mut io::sink()).map_err(ReadError::Io)?;
    let sha256 = reader.finish();
    file.seek(SeekFrom::Start(0)).map_err(ReadError::Io)?;
    Ok(sha256)
}

/// Hashes every byte read through it, and remembers whether the underlying read failed so that
/// such a failure is not blamed on the archive's content.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    failure: Option<io::Error>,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), failure: None }
    }

    fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                let kind = e.kind();
                self.failure = Some(e);
                Err(io::Error::new(kind, "reading the archive file failed"))
            }
        }
    }
}
