//! The archive walk: one streaming pass over a tar (optionally gzipped) or the central directory
//! of a zip, keeping only the three kinds of file the registry needs.

use std::cell::Cell;
use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::rc::Rc;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{DistributionError, Limits, Metadata};
use crate::quoting::quote;

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
            Format::Zip => walk_zip(file, &mut second)?,
            Format::Tar | Format::TarGz => walk_tar(BufReader::new(&mut *file), format, &mut second)?,
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

/// What one pass over the entries has found. Paths are kept as digests, so that memory does not
/// grow with their length.
struct Walk {
    limits: Limits,
    entries: u64,
    uncompressed: u64,
    top_folders: HashSet<PathDigest>,
    /// Every path met, by its case-folded form: the path itself, and whether it was a folder
    /// (only folders may repeat; two paths that differ only in case are one on the file systems
    /// of macOS and Windows).
    seen: HashMap<PathDigest, (PathDigest, bool)>,
    /// `prefix_hash` of every symbolic link met: a later entry under one would be written
    /// wherever the link points.
    symlinks: HashSet<u64>,
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
    Symlink,
    Other(&'static str),
}

impl Walk {
    fn new(limits: &Limits) -> Self {
        Self {
            limits: *limits,
            entries: 0,
            uncompressed: 0,
            top_folders: HashSet::new(),
            seen: HashMap::new(),
            symlinks: HashSet::new(),
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

    /// Whether a folder on `path` is a symbolic link met before: one pass over the path, however
    /// deep it is.
    fn under_symlink(&self, path: &str) -> bool {
        if self.symlinks.is_empty() {
            return false;
        }
        let mut hash = FNV_OFFSET;
        for b in path.bytes() {
            if b == b'/' && self.symlinks.contains(&hash) {
                return true;
            }
            hash = fnv_step(hash, b);
        }
        false
    }

    /// Accounts for one entry or extension header and the size it declares.
    fn count(&mut self, size: u64) -> Result<(), DistributionError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(DistributionError::TooManyEntries { limit: self.limits.max_entries });
        }
        self.uncompressed = self.uncompressed.saturating_add(size);
        if self.uncompressed > self.limits.max_uncompressed_bytes {
            return Err(DistributionError::UncompressedTooLarge { limit: self.limits.max_uncompressed_bytes });
        }
        Ok(())
    }

    /// Looks at one counted entry and keeps its content if it is wanted. `read` yields the content
    /// (at most `limit + 1` bytes are ever asked of it).
    fn visit(
        &mut self,
        raw_path: &[u8],
        kind: Kind,
        size: u64,
        read: &mut dyn FnMut(u64) -> io::Result<Vec<u8>>,
    ) -> Result<(), ReadError> {
        let path = normalize_path(raw_path).map_err(|why| DistributionError::UnsafeEntry {
            path: String::from_utf8_lossy(raw_path).into_owned(),
            why,
        })?;
        if path.is_empty() {
            return Ok(());
        }
        let depth = path.split('/').count();
        let folder = matches!(kind, Kind::Folder);
        if !self.second_pass() {
            let folded = path.to_lowercase();
            let folded_digest = digest(&folded);
            let exact = if folded == path { folded_digest } else { digest(&path) };
            match self.seen.entry(folded_digest) {
                Slot::Occupied(earlier) if earlier.get().0 != exact => {
                    return Err(DistributionError::CaseDuplicateEntry { path }.into());
                }
                Slot::Occupied(earlier) if !(folder && earlier.get().1) => {
                    return Err(DistributionError::DuplicateEntry { path }.into());
                }
                Slot::Occupied(_) => {}
                Slot::Vacant(slot) => {
                    slot.insert((exact, folder));
                }
            }
            if self.under_symlink(&path) {
                let why = "it lies under a symbolic link earlier in the archive";
                return Err(DistributionError::UnsafeEntry { path, why }.into());
            }
            if matches!(kind, Kind::Symlink) {
                self.symlinks.insert(prefix_hash(&path));
            }
        }
        if let Some((top, _)) = path.split_once('/') {
            self.top_folders.insert(digest(top));
        } else if folder {
            self.top_folders.insert(digest(&path));
        }
        if matches!(kind, Kind::Folder) {
            return Ok(());
        }
        let name = path.rsplit('/').next().unwrap_or_default();

        if self.second_pass() {
            if self.wanted_icons.contains(&path) {
                let captured = capture(&kind, size, self.limits.max_icon_bytes, read)?;
                if let Captured::Bytes(bytes) = &captured {
                    self.icon_bytes_kept += bytes.len() as u64;
                    if self.icon_bytes_kept > self.limits.max_icons_total_bytes {
                        return Err(
                            DistributionError::IconsTooLarge { limit: self.limits.max_icons_total_bytes }.into()
                        );
                    }
                }
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
        // The budget counts each kept path too, so that many empty icons with long paths add up.
        let cost = path.len() as u64 + if matches!(kind, Kind::File) { size.min(limits.max_icon_bytes) } else { 0 };
        if depth >= 2 && looks_like_icon(name) && !self.icons.contains_key(&path) {
            if self.icon_bytes_kept + cost > SPECULATIVE_ICON_BUDGET {
                self.icon_capture_incomplete = true;
            } else if matches!(kind, Kind::File) && size > limits.max_icon_bytes {
                // Kept as "too large" so that naming it as the icon gives a precise error.
                self.icon_bytes_kept += cost;
                self.icons.insert(path, Captured::TooLarge);
            } else {
                self.icon_bytes_kept += cost;
                let captured = capture(&kind, size, limits.max_icon_bytes, read)?;
                self.icons.insert(path, captured);
            }
        } else if depth >= 2 {
            // Any other file could still be named as an icon (any extension is allowed).
            self.icon_capture_incomplete = true;
        }
        Ok(())
    }
}

/// FNV-1a, 64 bits, whose state after each byte is the hash of the prefix so far: the hashes of
/// all of a path's folders in one pass.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv_step(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
}

fn prefix_hash(prefix: &str) -> u64 {
    prefix.bytes().fold(FNV_OFFSET, fnv_step)
}

/// A path's identity, in 16 bytes whatever its length.
type PathDigest = [u8; 16];

fn digest(path: &str) -> PathDigest {
    let hash = Sha256::digest(path.as_bytes());
    hash[..16].try_into().expect("SHA-256 is 32 bytes")
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
        Kind::Symlink => Ok(Captured::NotRegular("a symbolic link")),
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

/// The inflated tar stream, whose reader is handed back once the tar has ended so that what
/// follows it can be checked.
enum Inflate<R: BufRead> {
    Plain(R),
    /// One gzip member only: a second one would be data no extractor is asked about.
    Gz(Box<flate2::bufread::GzDecoder<R>>),
}

impl<R: BufRead> Read for Inflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Inflate::Plain(inner) => inner.read(buf),
            Inflate::Gz(inner) => inner.read(buf),
        }
    }
}

/// Counts the inflated bytes the tar parser reads and fails once they pass `limit`, so the
/// uncompressed limit holds for what the archive really inflates to, headers included, whatever
/// sizes its entries declare.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        if self.count.get() > self.limit {
            return Err(io::Error::other("the uncompressed limit is reached"));
        }
        Ok(n)
    }
}

fn walk_tar<R: Read>(source: R, format: Format, walk: &mut Walk) -> Result<(), ReadError> {
    let unreadable = |e: io::Error| ReadError::from(DistributionError::Unreadable(describe_io(&e)));
    let limit = walk.limits.max_uncompressed_bytes;
    let source = BufReader::with_capacity(64 * 1024, source);
    let inflate = match format {
        Format::TarGz => Inflate::Gz(Box::new(flate2::bufread::GzDecoder::new(source))),
        _ => Inflate::Plain(source),
    };
    let count = Rc::new(Cell::new(0));
    let mut archive = tar::Archive::new(Counted { inner: inflate, count: Rc::clone(&count), limit });
    let outcome = walk_tar_entries(&mut archive, walk);
    let too_large = || ReadError::from(DistributionError::UncompressedTooLarge { limit });
    if count.get() > limit {
        return Err(too_large());
    }
    outcome?;
    if walk.second_pass() {
        return Ok(());
    }
    // Only zero blocks may follow the end marker, and not too many of them; reading them to the end
    // of the gzip member also checks its CRC.
    let mut counted = archive.into_inner();
    let mut rest = (&mut counted).take(MAX_TRAILING_BYTES + 1);
    let mut block = [0u8; 8192];
    let mut trailing = 0;
    loop {
        let n = match rest.read(&mut block) {
            Ok(n) => n,
            Err(_) if count.get() > limit => return Err(too_large()),
            Err(e) => return Err(unreadable(e)),
        };
        if n == 0 {
            break;
        }
        if block[..n].iter().any(|b| *b != 0) {
            return Err(DistributionError::Unreadable("unexpected data after the end of the tar archive".into()).into());
        }
        trailing += n as u64;
    }
    if trailing > MAX_TRAILING_BYTES {
        return Err(DistributionError::Unreadable(format!(
            "more than {MAX_TRAILING_BYTES} bytes of padding after the end of the tar archive"
        ))
        .into());
    }
    if let Inflate::Gz(decoder) = counted.inner {
        let mut source = decoder.into_inner();
        if !source.fill_buf().map_err(unreadable)?.is_empty() {
            return Err(DistributionError::Unreadable(
                "unexpected data after the end of the gzip stream (a second gzip member is not allowed)".into(),
            )
            .into());
        }
    }
    Ok(())
}

/// What the extension headers before an entry said about it.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: bool,
    pax: Option<Pax>,
}

#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    size: Option<u64>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && !self.long_link && self.pax.is_none()
    }

    /// Takes in one extension header's content.
    fn add(&mut self, entry_type: tar::EntryType, mut data: Vec<u8>) -> Result<(), DistributionError> {
        let twice = |what: &str| DistributionError::Unreadable(format!("two {what}s describe one entry"));
        match entry_type {
            tar::EntryType::GNULongName => {
                if self.long_name.is_some() {
                    return Err(twice("GNU long name"));
                }
                // GNU tar ends the name with one NUL; any other NUL is refused with the path.
                if data.last() == Some(&0) {
                    data.pop();
                }
                self.long_name = Some(data);
            }
            tar::EntryType::GNULongLink => {
                if self.long_link {
                    return Err(twice("GNU long link name"));
                }
                self.long_link = true;
            }
            tar::EntryType::XHeader => {
                if self.pax.is_some() {
                    return Err(twice("PAX extended header"));
                }
                self.pax = Some(parse_pax(&data, false)?);
            }
            // A global header may only carry what names and sizes no entry (`git archive` writes
            // one with the commit id).
            _ => {
                parse_pax(&data, true)?;
            }
        }
        Ok(())
    }

    /// The entry's path: from a PAX `path`, a GNU long name, or the header. A PAX `size` must
    /// agree with the header's, which is what the blocks were laid out by.
    fn path(self, header: &tar::Header, size: u64) -> Result<Vec<u8>, DistributionError> {
        let pax = self.pax.unwrap_or_default();
        if pax.size.is_some_and(|declared| declared != size) {
            return Err(DistributionError::Unreadable(
                "an entry's PAX size disagrees with the size in its header".into(),
            ));
        }
        match (pax.path, self.long_name) {
            (Some(_), Some(_)) => {
                Err(DistributionError::Unreadable("an entry has both a PAX path and a GNU long name".into()))
            }
            (Some(path), None) | (None, Some(path)) => Ok(path),
            (None, None) => Ok(header.path_bytes().into_owned()),
        }
    }
}

/// Parses PAX records, `<length> <key>=<value>\n`, strictly: a record that does not parse, a key
/// given twice, or a sparse file is refused rather than guessed at.
fn parse_pax(data: &[u8], global: bool) -> Result<Pax, DistributionError> {
    let malformed = |why: &str| DistributionError::Unreadable(format!("malformed PAX header: {why}"));
    let mut pax = Pax::default();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().take(20).position(|b| *b == b' ').ok_or_else(|| malformed("a record has no length"))?;
        let length = std::str::from_utf8(&rest[..space])
            .ok()
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<usize>().ok())
            .ok_or_else(|| malformed("a record length is not a number"))?;
        if length <= space + 1 || length > rest.len() || rest[length - 1] != b'\n' {
            return Err(malformed("a record's length does not match it"));
        }
        let record = &rest[space + 1..length - 1];
        rest = &rest[length..];
        let equals = record.iter().position(|b| *b == b'=').filter(|at| *at > 0);
        let (key, value) = match equals {
            Some(at) => (&record[..at], &record[at + 1..]),
            None => return Err(malformed("a record has no key")),
        };
        match key {
            b"path" | b"size" | b"linkpath" if global => {
                return Err(DistributionError::Unreadable(
                    "a PAX global header may not set path, linkpath or size".into(),
                ));
            }
            b"path" => {
                let repeated = pax.path.replace(value.to_vec()).is_some();
                if value.is_empty() || repeated {
                    return Err(malformed("an empty or repeated path"));
                }
            }
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|digits| digits.parse::<u64>().ok())
                    .ok_or_else(|| malformed("a size is not a number"))?;
                if pax.size.replace(size).is_some() {
                    return Err(malformed("a repeated size"));
                }
            }
            _ if key.starts_with(b"GNU.sparse.") => {
                return Err(DistributionError::Unreadable("sparse files are not supported".into()));
            }
            _ => {}
        }
    }
    Ok(pax)
}

/// Walks the tar header by header (`raw`: the tar crate would read extension headers whole,
/// whatever their size): extension headers are capped, parsed here, and count as entries.
fn walk_tar_entries<R: Read>(archive: &mut tar::Archive<R>, walk: &mut Walk) -> Result<(), ReadError> {
    let unreadable = |e: io::Error| ReadError::from(DistributionError::Unreadable(describe_io(&e)));
    let max_header = walk.limits.max_header_bytes;
    let mut pending = Extensions::default();
    for entry in archive.entries().map_err(unreadable)?.raw(true) {
        let mut entry = entry.map_err(unreadable)?;
        let entry_type = entry.header().entry_type();
        let size = entry.size();
        walk.count(size)?;
        let extension = match entry_type {
            tar::EntryType::GNULongName => Some("GNU long name"),
            tar::EntryType::GNULongLink => Some("GNU long link name"),
            tar::EntryType::XHeader => Some("PAX extended header"),
            tar::EntryType::XGlobalHeader => Some("PAX global header"),
            _ => None,
        };
        if let Some(what) = extension {
            if size > max_header {
                return Err(DistributionError::HeaderTooLarge { what, limit: max_header }.into());
            }
            let mut data = Vec::with_capacity(size as usize);
            (&mut entry).take(size).read_to_end(&mut data).map_err(unreadable)?;
            pending.add(entry_type, data)?;
            continue;
        }
        let path = std::mem::take(&mut pending).path(entry.header(), size)?;
        let kind = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Folder,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Other("a hard link"),
            tar::EntryType::Char | tar::EntryType::Block => Kind::Other("a device file"),
            tar::EntryType::Fifo => Kind::Other("a named pipe"),
            // Its extra sparse-map blocks would be taken for data.
            tar::EntryType::GNUSparse => {
                return Err(DistributionError::Unreadable("sparse files are not supported".into()).into());
            }
            _ => Kind::Other("an unsupported kind of entry"),
        };
        let mut read = |limit: u64| {
            let mut buf = Vec::with_capacity(size.min(limit) as usize);
            (&mut entry).take(limit + 1).read_to_end(&mut buf)?;
            Ok(buf)
        };
        walk.visit(&path, kind, size, &mut read)?;
    }
    if !pending.is_empty() {
        return Err(
            DistributionError::Unreadable("the archive ends with an extension header but no entry".into()).into()
        );
    }
    Ok(())
}

fn walk_zip(file: &mut (impl Read + Seek), walk: &mut Walk) -> Result<(), ReadError> {
    let unreadable = |e: zip::result::ZipError| ReadError::from(DistributionError::Unreadable(e.to_string()));
    check_zip_directory(file, &walk.limits)?;
    file.seek(SeekFrom::Start(0)).map_err(ReadError::Io)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(&mut *file)).map_err(unreadable)?;
    if archive.len() as u64 > walk.limits.max_entries {
        return Err(DistributionError::TooManyEntries { limit: walk.limits.max_entries }.into());
    }
    // Streaming extractors go by the local headers: they must say what the central directory
    // says, and list nothing it does not.
    if !walk.second_pass() {
        archive.validate_header_consistency().map_err(unreadable)?;
    }
    for index in 0..archive.len() {
        let (path, kind, size) = {
            let entry = archive.by_index_raw(index).map_err(unreadable)?;
            let kind = if entry.is_dir() {
                Kind::Folder
            } else if entry.is_symlink() {
                Kind::Symlink
            } else if entry.unix_mode().is_some_and(|m| m & 0o170000 != 0 && m & 0o170000 != 0o100000) {
                Kind::Other("a special file")
            } else {
                Kind::File
            };
            (entry.name_raw().to_vec(), kind, entry.size())
        };
        walk.count(size)?;
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

/// Reads a zip's end-of-central-directory record (and its zip64 form) before the zip reader does,
/// which would hold as many entries as the record declares, and refuses a central directory beyond
/// the limits.
fn check_zip_directory(file: &mut (impl Read + Seek), limits: &Limits) -> Result<(), ReadError> {
    const EOCD: &[u8] = b"PK\x05\x06";
    const EOCD_LEN: u64 = 22;
    let len = file.seek(SeekFrom::End(0)).map_err(ReadError::Io)?;
    let window = len.min(EOCD_LEN + u64::from(u16::MAX));
    file.seek(SeekFrom::Start(len - window)).map_err(ReadError::Io)?;
    let mut tail = vec![0u8; window as usize];
    file.read_exact(&mut tail).map_err(ReadError::Io)?;
    // The last record whose comment ends exactly at the end of the file.
    let Some(at) = (0..tail.len().saturating_sub(EOCD_LEN as usize - 1)).rev().find(|&at| {
        tail[at..].starts_with(EOCD)
            && at + EOCD_LEN as usize + usize::from(u16::from_le_bytes([tail[at + 20], tail[at + 21]])) == tail.len()
    }) else {
        // The zip reader says what is wrong.
        return Ok(());
    };
    let u16_at = |i: usize| u64::from(u16::from_le_bytes([tail[at + i], tail[at + i + 1]]));
    let u32_at = |i: usize| u64::from(u32::from_le_bytes(tail[at + i..at + i + 4].try_into().expect("4 bytes")));
    let (mut entries, mut directory_bytes) = (u16_at(10), u32_at(12));
    if entries == u64::from(u16::MAX) || directory_bytes == u64::from(u32::MAX) {
        let eocd_offset = len - window + at as u64;
        if let Some(zip64) = read_zip64_end(file, eocd_offset).map_err(ReadError::Io)? {
            (entries, directory_bytes) = zip64;
        }
    }
    if entries > limits.max_entries {
        return Err(DistributionError::TooManyEntries { limit: limits.max_entries }.into());
    }
    if directory_bytes > limits.max_zip_directory_bytes {
        return Err(DistributionError::ZipDirectoryTooLarge { limit: limits.max_zip_directory_bytes }.into());
    }
    Ok(())
}

/// Entries and central directory size from the zip64 end record the locator before `eocd_offset`
/// points at, if there is one.
fn read_zip64_end(file: &mut (impl Read + Seek), eocd_offset: u64) -> io::Result<Option<(u64, u64)>> {
    if eocd_offset < 20 {
        return Ok(None);
    }
    let mut locator = [0u8; 20];
    file.seek(SeekFrom::Start(eocd_offset - 20))?;
    file.read_exact(&mut locator)?;
    if &locator[..4] != b"PK\x06\x07" {
        return Ok(None);
    }
    let record_offset = u64::from_le_bytes(locator[8..16].try_into().expect("8 bytes"));
    let mut record = [0u8; 56];
    file.seek(SeekFrom::Start(record_offset))?;
    if read_up_to(file, &mut record)? < record.len() || &record[..4] != b"PK\x06\x06" {
        return Ok(None);
    }
    let u64_at = |i: usize| u64::from_le_bytes(record[i..i + 8].try_into().expect("8 bytes"));
    Ok(Some((u64_at(32), u64_at(40))))
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
