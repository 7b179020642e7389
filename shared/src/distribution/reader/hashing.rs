//! The archive's SHA-256: of the whole file ahead of a zip walk, or of the bytes as a tar walk
//! reads them. Apart from the walks, since the digest is of the file, whatever its format.

use std::io::{self, Read, Seek, SeekFrom};

use sha2::{Digest, Sha256};

use super::ReadError;

pub(super) fn hash_file(file: &mut (impl Read + Seek)) -> Result<String, ReadError> {
    let mut reader = HashingReader::new(&mut *file);
    io::copy(&mut reader, &mut io::sink()).map_err(ReadError::Io)?;
    let sha256 = reader.finish();
    file.seek(SeekFrom::Start(0)).map_err(ReadError::Io)?;
    Ok(sha256)
}

/// Hashes every byte read through it, and remembers whether the underlying read failed so that
/// such a failure is not blamed on the archive's content.
pub(super) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pub(super) failure: Option<io::Error>,
}

impl<R: Read> HashingReader<R> {
    pub(super) fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), failure: None }
    }

    pub(super) fn finish(self) -> String {
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
