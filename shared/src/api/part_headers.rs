//! A bound on multipart part headers. The multipart parser buffers a part's headers until their
//! blank line, however long they are; this watches the body as it streams past and fails it as
//! soon as one header block grows beyond the limit, so a huge part header is a 400 and never a
//! buffer the size of the upload.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

/// Headers of one part (Content-Disposition, Content-Type …) fit easily in this.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("a part's headers are longer than {MAX_PART_HEADER_BYTES} bytes")]
pub struct PartHeadersTooLarge;

/// Tracks, chunk by chunk, where part headers start (after each `--boundary`) and end (at the
/// first blank line).
struct PartHeaderScanner {
    delimiter: Vec<u8>,
    in_headers: bool,
    header_bytes: usize,
    /// The last bytes of the previous chunk, so that a pattern split across chunks is found.
    tail: Vec<u8>,
}

const BLANK_LINE: &[u8] = b"\r\n\r\n";

impl PartHeaderScanner {
    fn new(boundary: &str) -> Self {
        // The body starts with `--boundary`; every later delimiter is `\r\n--boundary`. Seeding the
        // tail with CRLF makes the first look like the rest.
        let delimiter = format!("\r\n--{boundary}").into_bytes();
        Self { delimiter, in_headers: false, header_bytes: 0, tail: b"\r\n".to_vec() }
    }

    fn scan(&mut self, chunk: &[u8]) -> Result<(), PartHeadersTooLarge> {
        let mut rest = chunk;
        loop {
            let pattern: &[u8] = if self.in_headers { BLANK_LINE } else { &self.delimiter };
            match find_across(&self.tail, rest, pattern) {
                Some(end) => {
                    // `end` counts from the start of `rest`: the pattern's last byte is before it.
                    if self.in_headers {
                        self.header_bytes += end;
                        if self.header_bytes > MAX_PART_HEADER_BYTES {
                            return Err(PartHeadersTooLarge);
                        }
                    }
                    self.in_headers = !self.in_headers;
                    self.header_bytes = 0;
                    rest = &rest[end..];
                    self.tail.clear();
                }
                None => {
                    if self.in_headers {
                        self.header_bytes += rest.len();
                        if self.header_bytes > MAX_PART_HEADER_BYTES {
                            return Err(PartHeadersTooLarge);
                        }
                    }
                    keep_tail(&mut self.tail, rest, pattern.len().max(BLANK_LINE.len()) - 1);
                    return Ok(());
                }
            }
        }
    }
}

/// Where `pattern` ends in `rest` when it occurs in `tail ++ rest` ending inside `rest`.
fn find_across(tail: &[u8], rest: &[u8], pattern: &[u8]) -> Option<usize> {
    if !tail.is_empty() {
        let head = &rest[..rest.len().min(pattern.len() - 1)];
        let mut joined = Vec::with_capacity(tail.len() + head.len());
        joined.extend_from_slice(tail);
        joined.extend_from_slice(head);
        if let Some(start) = memchr::memmem::find(&joined, pattern) {
            let end = start + pattern.len();
            if end > tail.len() {
                return Some(end - tail.len());
            }
        }
    }
    memchr::memmem::find(rest, pattern).map(|start| start + pattern.len())
}

fn keep_tail(tail: &mut Vec<u8>, rest: &[u8], keep: usize) {
    tail.extend_from_slice(&rest[rest.len().saturating_sub(keep)..]);
    let excess = tail.len().saturating_sub(keep);
    tail.drain(..excess);
}

/// `body`, failing with [`PartHeadersTooLarge`] as soon as a part's headers outgrow the limit.
pub fn limit_part_headers<S, E>(
    body: S,
    boundary: &str,
) -> impl Stream<Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>> + use<S, E>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut scanner = PartHeaderScanner::new(boundary);
    body.map(move |chunk| {
        let chunk = chunk.map_err(Into::into)?;
        scanner.scan(&chunk)?;
        Ok(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_chunks(body: &[u8], chunk: usize) -> Result<(), PartHeadersTooLarge> {
        let mut limit = PartHeaderScanner::new("XYZ");
        body.chunks(chunk).try_for_each(|c| limit.scan(c))
    }

    fn part(header_len: usize, data: &[u8]) -> Vec<u8> {
        let mut body = b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"".to_vec();
        body.extend(std::iter::repeat_n(b'a', header_len));
        body.extend_from_slice(b"\"\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
        body
    }

    #[test]
    fn ordinary_parts_pass_whatever_the_chunking() {
        let data = vec![b'\r'; 100_000];
        let mut body = part(20, &data);
        body.extend(part(20, b"second"));
        body.extend_from_slice(b"--XYZ--\r\n");
        for chunk in [1, 2, 3, 7, 64, 4096, body.len()] {
            assert!(scan_in_chunks(&body, chunk).is_ok(), "chunk size {chunk}");
        }
    }

    #[test]
    fn a_huge_part_header_fails_whatever_the_chunking() {
        let mut body = part(20, b"fine");
        body.extend(part(MAX_PART_HEADER_BYTES, b"data"));
        for chunk in [1, 5, 1000, body.len()] {
            assert!(scan_in_chunks(&body, chunk).is_err(), "chunk size {chunk}");
        }
    }

    #[test]
    fn file_data_that_looks_like_headers_is_not_counted() {
        // A blank line in the data, and data longer than the limit without one.
        let mut data = vec![b'x'; 3 * MAX_PART_HEADER_BYTES];
        data.extend_from_slice(b"\r\n\r\n");
        let body = part(10, &data);
        assert!(scan_in_chunks(&body, 333).is_ok());
    }
}
