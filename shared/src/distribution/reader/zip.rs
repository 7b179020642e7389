//! The zip walk: the end-of-central-directory record checked against the limits before the zip
//! reader trusts it, then the entries of the central directory. Apart from the tar walk, which
//! reads its archive as one stream.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use super::walk::{Kind, Walk};
use super::{ReadError, read_up_to};
use crate::distribution::{DistributionError, Limits};
use crate::quoting::quote;

pub(super) fn walk_zip(file: &mut (impl Read + Seek), walk: &mut Walk) -> Result<(), ReadError> {
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
            let unsafe_entry = |why: &'static str| {
                let path = String::from_utf8_lossy(entry.name_raw()).into_owned();
                ReadError::from(DistributionError::UnsafeEntry { path, why })
            };
            let kind = if entry.is_dir() {
                Kind::Folder
            } else if entry.is_symlink() {
                // unzip makes a link, Python's zipfile a file holding the link's target.
                return Err(unsafe_entry("a symbolic link in a zip, which extractors make a link or a file"));
            } else if entry.unix_mode().is_some_and(|m| m & 0o170000 != 0 && m & 0o170000 != 0o100000) {
                return Err(unsafe_entry("a device file or named pipe"));
            } else {
                Kind::File
            };
            (entry.name_raw().to_vec(), kind, entry.size())
        };
        walk.count(size)?;
        // Every file is inflated once and its CRC-32 checked (the zip reader checks it at the
        // end of the entry), as extractors do: a corrupt entry is a corrupt archive, whatever the
        // registry itself reads of it. Inflation stops a byte past the declared size (which the
        // limits counted), so that a stream that inflates further cannot make this pass run long.
        if matches!(kind, Kind::File) && !walk.second_pass() {
            let corrupt = |why: String| {
                let name = String::from_utf8_lossy(&path).into_owned();
                ReadError::from(DistributionError::Unreadable(format!(
                    "the zip entry {} is corrupt: {why}",
                    quote(&name)
                )))
            };
            let mut entry = archive.by_index(index).map_err(unreadable)?;
            let inflated =
                io::copy(&mut (&mut entry).take(size + 1), &mut io::sink()).map_err(|e| corrupt(e.to_string()))?;
            if inflated != size {
                return Err(corrupt(format!("it inflates to {inflated} bytes, not the {size} it declares")));
            }
        }
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
/// the limits. The record must be where readers look for it and the only one they could find:
/// the last bytes of the file (its comment ending the file), with no other record in reach; and
/// the directory it declares must end exactly where the record (or the zip64 end record) begins,
/// so that its declared size is the size the zip reader reads.
fn check_zip_directory(file: &mut (impl Read + Seek), limits: &Limits) -> Result<(), ReadError> {
    const EOCD: &[u8] = b"PK\x05\x06";
    const EOCD_LEN: usize = 22;
    let refuse =
        |why: &str| -> ReadError { DistributionError::Unreadable(format!("not a well-formed zip: {why}")).into() };
    let len = file.seek(SeekFrom::End(0)).map_err(ReadError::Io)?;
    let window = len.min(EOCD_LEN as u64 + u64::from(u16::MAX));
    file.seek(SeekFrom::Start(len - window)).map_err(ReadError::Io)?;
    let mut tail = vec![0u8; window as usize];
    file.read_exact(&mut tail).map_err(ReadError::Io)?;
    let signatures: Vec<usize> =
        (0..tail.len().saturating_sub(EOCD_LEN - 1)).filter(|&at| tail[at..].starts_with(EOCD)).collect();
    let ends_the_file =
        |at: usize| at + EOCD_LEN + usize::from(u16::from_le_bytes([tail[at + 20], tail[at + 21]])) == tail.len();
    // Readers look from the end for the last record; one whose comment does not end the file means
    // bytes after it, and two that could end it mean readers may choose differently. (The
    // signature may also occur by chance in compressed data: those end nothing and are skipped.)
    let Some(&at) = signatures.last() else { return Err(refuse("it has no end-of-central-directory record")) };
    if !ends_the_file(at) {
        return Err(refuse("its end-of-central-directory record is not at the end of the file"));
    }
    if signatures.iter().filter(|&&other| ends_the_file(other)).count() > 1 {
        return Err(refuse("it has more than one end-of-central-directory record"));
    }
    let u16_at = |i: usize| u64::from(u16::from_le_bytes([tail[at + i], tail[at + i + 1]]));
    let u32_at = |i: usize| u64::from(u32::from_le_bytes(tail[at + i..at + i + 4].try_into().expect("4 bytes")));
    let eocd_offset = len - window + at as u64;
    let (mut entries, mut directory_bytes, mut directory_offset, mut directory_end) =
        (u16_at(10), u32_at(12), u32_at(16), eocd_offset);
    if entries == u64::from(u16::MAX)
        || directory_bytes == u64::from(u32::MAX)
        || directory_offset == u64::from(u32::MAX)
    {
        let Some(zip64) = read_zip64_end(file, eocd_offset).map_err(ReadError::Io)? else {
            return Err(refuse("its zip64 end record is missing"));
        };
        (entries, directory_bytes, directory_offset, directory_end) = zip64;
    }
    if entries > limits.max_entries {
        return Err(DistributionError::TooManyEntries { limit: limits.max_entries }.into());
    }
    if directory_bytes > limits.max_zip_directory_bytes {
        return Err(DistributionError::ZipDirectoryTooLarge { limit: limits.max_zip_directory_bytes }.into());
    }
    if directory_offset.checked_add(directory_bytes) != Some(directory_end) {
        return Err(refuse("its central directory is not the size its end record declares"));
    }
    Ok(())
}

/// Entries, size and offset of the central directory, and where the zip64 end record begins,
/// from the record the locator before `eocd_offset` points at, if there is one.
fn read_zip64_end(file: &mut (impl Read + Seek), eocd_offset: u64) -> io::Result<Option<(u64, u64, u64, u64)>> {
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
    Ok(Some((u64_at(32), u64_at(40), u64_at(48), record_offset)))
}
