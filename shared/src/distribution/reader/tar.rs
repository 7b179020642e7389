//! The tar walk (plain or gzipped): header by header, with GNU and PAX extension headers parsed
//! here under their own limits, the inflated bytes counted, and what follows the end marker
//! checked. Apart from the zip walk, whose archive is read from its central directory instead.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use super::walk::{Kind, Walk, describe_io, normalize_path};
use super::{ArchiveFormat, ReadError};
use crate::distribution::DistributionError;

/// After a tar's end marker only block padding should follow; more is refused, so a stream of
/// zeros behind an empty tar cannot keep the reader busy.
const MAX_TRAILING_BYTES: u64 = 1024 * 1024;

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

pub(super) fn walk_tar<R: Read>(source: R, format: ArchiveFormat, walk: &mut Walk) -> Result<(), ReadError> {
    let unreadable = |e: io::Error| ReadError::from(DistributionError::Unreadable(describe_io(&e)));
    let limit = walk.limits.max_uncompressed_bytes;
    let source = BufReader::with_capacity(64 * 1024, source);
    let inflate = match format {
        ArchiveFormat::TarGz => Inflate::Gz(Box::new(flate2::bufread::GzDecoder::new(source))),
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
    long_link: Option<Vec<u8>>,
    pax: Option<Pax>,
}

#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }

    /// Takes in one extension header's content.
    fn add(&mut self, entry_type: tar::EntryType, mut data: Vec<u8>) -> Result<(), DistributionError> {
        let twice = |what: &str| DistributionError::Unreadable(format!("two {what}s describe one entry"));
        match entry_type {
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                let (slot, what) = if entry_type == tar::EntryType::GNULongName {
                    (&mut self.long_name, "GNU long name")
                } else {
                    (&mut self.long_link, "GNU long link name")
                };
                if slot.is_some() {
                    return Err(twice(what));
                }
                // GNU tar ends the name with one NUL; any other NUL is refused with the path.
                if data.last() == Some(&0) {
                    data.pop();
                }
                *slot = Some(data);
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

    /// The entry's path and link target: from a PAX `path` / `linkpath`, a GNU long name / long
    /// link name, or the header. A PAX `size` must agree with the header's, which is what the
    /// blocks were laid out by.
    fn path_and_link(self, header: &tar::Header, size: u64) -> Result<(Vec<u8>, Vec<u8>), DistributionError> {
        let pax = self.pax.unwrap_or_default();
        if pax.size.is_some_and(|declared| declared != size) {
            return Err(DistributionError::Unreadable(
                "an entry's PAX size disagrees with the size in its header".into(),
            ));
        }
        let path = either(pax.path, self.long_name, "a PAX path and a GNU long name")?
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let link = either(pax.linkpath, self.long_link, "a PAX linkpath and a GNU long link name")?
            .unwrap_or_else(|| header.link_name_bytes().map(|link| link.into_owned()).unwrap_or_default());
        Ok((path, link))
    }
}

/// The one of a PAX value and a GNU extension that is given; both is refused (extractors differ on
/// which wins).
fn either(pax: Option<Vec<u8>>, gnu: Option<Vec<u8>>, both: &str) -> Result<Option<Vec<u8>>, DistributionError> {
    match (pax, gnu) {
        (Some(_), Some(_)) => Err(DistributionError::Unreadable(format!("an entry has both {both}"))),
        (value, None) | (None, value) => Ok(value),
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
            b"linkpath" => {
                let repeated = pax.linkpath.replace(value.to_vec()).is_some();
                if value.is_empty() || repeated {
                    return Err(malformed("an empty or repeated linkpath"));
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
    // Whether the last header was an extension header (a global one included, which `pending`
    // does not keep): Python refuses an archive that ends with one.
    let mut extension_last = false;
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
            extension_last = true;
            continue;
        }
        extension_last = false;
        let (path, link) = std::mem::take(&mut pending).path_and_link(entry.header(), size)?;
        let kind = entry_kind(entry_type, &path, &link, size)?;
        let mut read = |limit: u64| {
            let mut buf = Vec::with_capacity(size.min(limit) as usize);
            (&mut entry).take(limit + 1).read_to_end(&mut buf)?;
            Ok(buf)
        };
        walk.visit(&path, kind, size, &mut read)?;
    }
    if extension_last || !pending.is_empty() {
        return Err(
            DistributionError::Unreadable("the archive ends with an extension header but no entry".into()).into()
        );
    }
    Ok(())
}

/// What an entry is, refusing what the common extractors would read otherwise than this reader,
/// or what a careful one refuses to make:
/// - any entry but a regular file that carries data: GNU tar gives folders and links no data,
///   Python and busybox give none to any type but regular files, and all of them read those
///   bytes as further headers, which could hold entries only they would see;
/// - a regular file whose name ends in `/`, which GNU tar and Python make a folder;
/// - device files and named pipes, which Python's extraction filter refuses and a root extractor
///   would create;
/// - a hard link to an absolute path or through `..`, and a symbolic link that points outside
///   the archive.
fn entry_kind(entry_type: tar::EntryType, path: &[u8], link: &[u8], size: u64) -> Result<Kind, ReadError> {
    let unsafe_entry = |why: &'static str| -> ReadError {
        DistributionError::UnsafeEntry { path: String::from_utf8_lossy(path).into_owned(), why }.into()
    };
    let regular = matches!(entry_type, tar::EntryType::Regular | tar::EntryType::Continuous);
    if !regular && size > 0 {
        return Err(unsafe_entry(
            "an entry that is not a regular file carries data, which other extractors read as more entries",
        ));
    }
    Ok(match entry_type {
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            if path.ends_with(b"/") {
                return Err(unsafe_entry("a regular file whose name ends in '/' is a folder to other extractors"));
            }
            Kind::File
        }
        tar::EntryType::Directory => Kind::Folder,
        tar::EntryType::Symlink => {
            if !link_stays_inside(path, link) {
                return Err(unsafe_entry("a symbolic link that points outside the archive"));
            }
            Kind::Symlink
        }
        tar::EntryType::Link => {
            if link.is_empty() || normalize_path(link).is_err() {
                return Err(unsafe_entry("a hard link to an absolute path or through '..'"));
            }
            Kind::Other("a hard link")
        }
        tar::EntryType::Char | tar::EntryType::Block => return Err(unsafe_entry("a device file")),
        tar::EntryType::Fifo => return Err(unsafe_entry("a named pipe")),
        // Its extra sparse-map blocks would be taken for data.
        tar::EntryType::GNUSparse => {
            return Err(DistributionError::Unreadable("sparse files are not supported".into()).into());
        }
        _ => Kind::Other("an unsupported kind of entry"),
    })
}

/// Whether a symbolic link at `path` to `target` resolves inside the archive (relative, and never
/// above its root), as Python's extraction filter requires.
fn link_stays_inside(path: &[u8], target: &[u8]) -> bool {
    let target = String::from_utf8_lossy(target);
    if target.is_empty() || target.starts_with('/') || target.contains('\\') || target.contains('\0') {
        return false;
    }
    if target.len() >= 2 && target.as_bytes()[1] == b':' {
        return false;
    }
    let path = String::from_utf8_lossy(path);
    // The folder the link is in, then each part of the target.
    let mut depth = path.split('/').filter(|part| !part.is_empty() && *part != ".").count().saturating_sub(1) as i64;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}
