//! Streaming CSV records with their exact source bytes.
//!
//! Built on `csv_core` rather than `csv::Reader` because a quarantined row must carry the raw
//! line exactly as it was in the file (including invalid UTF-8 or a broken quote), and only
//! the low-level parser says how many input bytes each record consumed.

use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Records longer than this are quarantined whole instead of parsed: a runaway quote or a
/// corrupted line must not make memory grow with the file.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// How much of an oversized record is kept in the quarantine table.
pub const MAX_QUARANTINED_RAW_BYTES: usize = 64 << 10;

/// One record as read from the file.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// 1-based line number of the record's first line in the file.
    pub line: u64,
    /// The record's bytes without its line terminator (truncated for oversized records).
    pub raw: Vec<u8>,
    /// The parsed fields, or why the record could not be split into fields.
    pub fields: Result<Vec<String>, RecordDefect>,
}

/// Why a record could not be turned into text fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordDefect {
    InvalidUtf8,
    /// PostgreSQL text cannot hold U+0000.
    NulByte,
    TooLong,
}

/// Reads records one at a time with bounded memory.
pub struct RecordReader<R> {
    input: R,
    parser: csv_core::Reader,
    field_bytes: Vec<u8>,
    field_ends: Vec<usize>,
    raw: Vec<u8>,
    oversized: bool,
    /// Newlines inside the discarded tail of an oversized record.
    skipped_newlines: u64,
    /// Whether the last byte counted was `\r` (a `\r\n` may be split between records).
    after_cr: bool,
    next_line: u64,
    done: bool,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R) -> Self {
        let parser = csv_core::ReaderBuilder::new()
            .terminator(csv_core::Terminator::CRLF)
            .build();
        RecordReader {
            input,
            parser,
            field_bytes: vec![0; 4096],
            field_ends: vec![0; 32],
            raw: Vec::with_capacity(4096),
            oversized: false,
            skipped_newlines: 0,
            after_cr: false,
            next_line: 1,
            done: false,
        }
    }

    /// The next record, `None` at the end of the input.
    pub fn next_record(&mut self) -> io::Result<Option<RawRecord>> {
        if self.done {
            return Ok(None);
        }
        self.raw.clear();
        self.oversized = false;
        self.skipped_newlines = 0;
        let (mut nout_total, mut nend_total) = (0usize, 0usize);
        loop {
            let input = self.input.fill_buf()?;
            let (result, nin, nout, nend) = self.parser.read_record(
                input,
                &mut self.field_bytes[nout_total..],
                &mut self.field_ends[nend_total..],
            );
            if self.raw.len() + nin <= MAX_RECORD_BYTES {
                self.raw.extend_from_slice(&input[..nin]);
            } else {
                let room = MAX_RECORD_BYTES.saturating_sub(self.raw.len());
                self.raw.extend_from_slice(&input[..nin.min(room)]);
                self.oversized = true;
                self.skipped_newlines +=
                    count_line_ends(&input[room.min(nin)..nin], &mut self.after_cr);
            }
            self.input.consume(nin);
            nout_total += nout;
            nend_total += nend;
            match result {
                csv_core::ReadRecordResult::InputEmpty => continue,
                csv_core::ReadRecordResult::OutputFull => {
                    if self.oversized {
                        // Keep scanning for the record's end without storing its fields.
                        nout_total = 0;
                        nend_total = 0;
                    } else {
                        let len = self.field_bytes.len();
                        self.field_bytes.resize(len * 2, 0);
                    }
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    if self.oversized {
                        nend_total = 0;
                    } else {
                        let len = self.field_ends.len();
                        self.field_ends.resize(len * 2, 0);
                    }
                }
                csv_core::ReadRecordResult::Record => {
                    return Ok(Some(self.finish_record(nend_total)));
                }
                csv_core::ReadRecordResult::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }

    fn finish_record(&mut self, nends: usize) -> RawRecord {
        // The parser skips blank lines before a record; they belong to no record.
        let leading = self
            .raw
            .iter()
            .take_while(|b| **b == b'\n' || **b == b'\r')
            .count();
        let line = self.next_line + count_line_ends(&self.raw[..leading], &mut self.after_cr);
        self.next_line = line
            + count_line_ends(&self.raw[leading..], &mut self.after_cr)
            + self.skipped_newlines;
        let mut end = self.raw.len();
        while end > leading && matches!(self.raw[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let keep = if self.oversized {
            (end - leading).min(MAX_QUARANTINED_RAW_BYTES)
        } else {
            end - leading
        };
        let raw = self.raw[leading..leading + keep].to_vec();
        let fields = if self.oversized {
            Err(RecordDefect::TooLong)
        } else {
            let mut fields = Vec::with_capacity(nends);
            let mut start = 0;
            let mut defect = None;
            for &field_end in &self.field_ends[..nends] {
                match std::str::from_utf8(&self.field_bytes[start..field_end]) {
                    Ok(text) if text.contains('\0') => defect = Some(RecordDefect::NulByte),
                    Ok(text) => fields.push(text.to_owned()),
                    Err(_) => defect = Some(RecordDefect::InvalidUtf8),
                }
                start = field_end;
            }
            match defect {
                Some(defect) => Err(defect),
                None => Ok(fields),
            }
        };
        RawRecord { line, raw, fields }
    }
}

/// Counts line ends (`\n`, `\r\n` and a bare `\r`, as the parser treats them) across chunks:
/// `after_cr` carries whether the previous chunk ended with `\r`.
fn count_line_ends(bytes: &[u8], after_cr: &mut bool) -> u64 {
    let mut count = 0;
    for &b in bytes {
        match b {
            b'\r' => count += 1,
            b'\n' if !*after_cr => count += 1,
            _ => {}
        }
        *after_cr = b == b'\r';
    }
    count
}

/// Passes bytes through while computing their SHA-256 and counting them. The reader is
/// usually moved into a parser; [`HashingReader::digest`] keeps a handle to read the result.
pub struct HashingReader<R> {
    inner: R,
    digest: ContentDigest,
}

/// The running SHA-256 and length of what a [`HashingReader`] has read.
#[derive(Clone, Default)]
pub struct ContentDigest(Arc<Mutex<(Sha256, u64)>>);

impl ContentDigest {
    /// Hex SHA-256 and length of everything read so far.
    pub fn finish(&self) -> (String, u64) {
        let state = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (hex(&state.0.clone().finalize()), state.1)
    }
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            digest: ContentDigest::default(),
        }
    }

    pub fn digest(&self) -> ContentDigest {
        self.digest.clone()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self
            .digest
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.0.update(&buf[..n]);
        state.1 += n as u64;
        Ok(n)
    }
}

/// Lower-case hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a whole reader, in hex.
pub fn sha256_hex(mut input: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut input, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8]) -> Vec<RawRecord> {
        let mut reader = RecordReader::new(input);
        let mut out = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            out.push(record);
        }
        out
    }

    #[test]
    fn keeps_exact_raw_bytes_and_line_numbers() {
        let recs = records(b"a,b\r\n1,\"x,y\"\r\n\r\n2,\"multi\nline\"\n3,z");
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[1].raw, b"1,\"x,y\"");
        assert_eq!(recs[1].fields.as_ref().unwrap(), &["1", "x,y"]);
        assert_eq!(recs[1].line, 2);
        assert_eq!(recs[2].line, 4);
        assert_eq!(recs[2].raw, b"2,\"multi\nline\"");
        assert_eq!(recs[3].line, 6);
        assert_eq!(recs[3].fields.as_ref().unwrap(), &["3", "z"]);
    }

    #[test]
    fn bare_carriage_returns_end_lines_too() {
        let recs = records(b"a,b\r1,x\r2,y\r");
        assert_eq!(recs.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(recs[2].raw, b"2,y");
    }

    #[test]
    fn strips_bom_and_flags_invalid_utf8() {
        let recs = records(b"\xef\xbb\xbfa,b\n1,\xff\n");
        assert_eq!(recs[0].fields.as_ref().unwrap(), &["a", "b"]);
        assert_eq!(recs[1].fields, Err(RecordDefect::InvalidUtf8));
        assert_eq!(recs[1].raw, b"1,\xff");
    }

    #[test]
    fn oversized_record_is_cut_and_reading_continues() {
        let mut input = b"a,b\n1,".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        input.extend_from_slice(b"\n2,ok\n");
        let recs = records(&input);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].fields, Err(RecordDefect::TooLong));
        assert_eq!(recs[1].raw.len(), MAX_QUARANTINED_RAW_BYTES);
        assert_eq!(recs[2].fields.as_ref().unwrap(), &["2", "ok"]);
        assert_eq!(recs[2].line, 3);
    }

    #[test]
    fn unterminated_quote_swallows_the_rest_as_one_record() {
        let recs = records(b"a,b\n1,\"open\n2,x\n");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].fields.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn hashing_reader_matches_direct_hash() {
        let data = b"hello world";
        let mut reader = HashingReader::new(&data[..]);
        let digest = reader.digest();
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        assert_eq!(digest.finish(), (sha256_hex(&data[..]).unwrap(), 11));
    }
}
