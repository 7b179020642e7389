//! The bookkeeping of one pass over an archive's entries, the same for a tar and a zip: entries
//! and sizes counted against the limits, paths normalised and checked (duplicates, case clashes,
//! entries under symbolic links), and the content of the few files wanted captured. Kept apart from
//! the formats so that both walks apply exactly the same rules.

use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;

use sha2::{Digest, Sha256};

use super::{METADATA_FILE, ReadError, UI_CONFIG_FILE};
use crate::distribution::{DistributionError, Limits};

/// Icons met before `metadata.json` says which ones it wants are kept on speculation, within this
/// budget; past it a second pass looks for the missing ones.
const SPECULATIVE_ICON_BUDGET: u64 = 8 * 1024 * 1024;

/// The best candidate so far for a file looked up by name anywhere in the archive: the shallowest
/// wins, the first of equals.
#[derive(Default)]
pub(super) struct Candidate {
    depth: usize,
    path: String,
    content: Option<Captured>,
}

pub(super) enum Captured {
    Bytes(Vec<u8>),
    TooLarge,
    NotRegular(&'static str),
}

impl Candidate {
    fn wants(&self, depth: usize) -> bool {
        self.content.is_none() || depth < self.depth
    }

    pub(super) fn take_content(
        &mut self,
        file: &'static str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, DistributionError> {
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
pub(super) struct Walk {
    pub(super) limits: Limits,
    entries: u64,
    uncompressed: u64,
    pub(super) top_folders: HashSet<PathDigest>,
    /// Every path met, by its case-folded form: the path itself, and whether it was a folder
    /// (only folders may repeat; two paths that differ only in case are one on the file systems
    /// of macOS and Windows).
    seen: HashMap<PathDigest, (PathDigest, bool)>,
    /// `prefix_hash` of every symbolic link met: a later entry under one would be written
    /// wherever the link points.
    symlinks: HashSet<u64>,
    pub(super) metadata: Candidate,
    pub(super) ui_config: Candidate,
    /// Icon-looking files kept on speculation (first pass) or the exact ones sought (second pass).
    pub(super) icons: BTreeMap<String, Captured>,
    icon_bytes_kept: u64,
    pub(super) icon_capture_incomplete: bool,
    /// On a second pass: the only paths worth keeping.
    pub(super) wanted_icons: HashSet<String>,
}

pub(super) enum Kind {
    File,
    Folder,
    Symlink,
    Other(&'static str),
}

impl Walk {
    pub(super) fn new(limits: &Limits) -> Self {
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

    pub(super) fn second_pass(&self) -> bool {
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
    pub(super) fn count(&mut self, size: u64) -> Result<(), DistributionError> {
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
    pub(super) fn visit(
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
            let folded = collision_key(&path);
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
            // By the same key: a folder under the link's name in another case or form is the link
            // on the file systems that fold them.
            if self.under_symlink(&folded) {
                let why = "it lies under a symbolic link earlier in the archive";
                return Err(DistributionError::UnsafeEntry { path, why }.into());
            }
            if matches!(kind, Kind::Symlink) {
                self.symlinks.insert(prefix_hash(&folded));
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

/// The key under which two paths are one file on the file systems extractors write to: Unicode
/// NFC (APFS and NTFS compare normalized names, so do case-folding ext4 and f2fs), full Unicode
/// case folding (`ſ` is `s`, not only ASCII), and each part without trailing dots and spaces
/// (Win32 strips them: `metadata.json.` is `metadata.json`).
pub(super) fn collision_key(path: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut key = String::with_capacity(path.len());
    for (i, part) in path.split('/').enumerate() {
        if i > 0 {
            key.push('/');
        }
        let stripped = part.trim_end_matches(['.', ' ']);
        let part = if stripped.is_empty() { part } else { stripped };
        let folded = caseless::default_case_fold_str(&part.nfc().collect::<String>());
        key.extend(folded.nfc());
    }
    key
}

fn prefix_hash(prefix: &str) -> u64 {
    prefix.bytes().fold(FNV_OFFSET, fnv_step)
}

/// A path's identity, in 16 bytes whatever its length.
type PathDigest = [u8; 16];

pub(super) fn digest(path: &str) -> PathDigest {
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
/// The longest file name and path Linux file systems store (NAME_MAX, PATH_MAX less its NUL).
const MAX_NAME_BYTES: usize = 255;
const MAX_PATH_BYTES: usize = 4095;

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
    // A separator on Windows, a plain character to Linux extractors: they would not agree on
    // the path (nor with this reader) either way.
    if text.contains('\\') {
        return Err("a backslash in a path is read as a separator by some extractors and not by others");
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("'..' in a path is not allowed"),
            // What no file system an extractor writes to can store (NAME_MAX, PATH_MAX).
            _ if part.len() > MAX_NAME_BYTES => return Err("a part of the path is longer than 255 bytes"),
            _ => parts.push(part),
        }
    }
    let path = parts.join("/");
    if path.len() > MAX_PATH_BYTES {
        return Err("the path is longer than 4095 bytes");
    }
    Ok(path)
}

pub(super) fn describe_io(e: &io::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::collision_key;

    #[test]
    fn names_that_are_one_file_elsewhere_share_a_key() {
        let key = collision_key;
        assert_eq!(key("top/Metadata.JSON"), key("top/metadata.json"));
        assert_eq!(key("top/caf\u{e9}.txt"), key("top/cafe\u{301}.txt"), "NFC and NFD");
        assert_eq!(key("top/\u{17f}etup.py"), key("top/setup.py"), "long s folds to s");
        assert_eq!(key("top/metadata.json."), key("top/metadata.json"), "Win32 strips trailing dots");
        assert_eq!(key("top/metadata.json .."), key("top/metadata.json"), "and spaces");
        assert_eq!(key("TOP/libs/a.jar"), key("top/LIBS/a.jar"));
        assert_ne!(key("top/a.jar"), key("top/b.jar"));
    }
}
