//! Compact storage of every request's record: a per-connection byte stream of delta- and varint-encoded
//! records in chunks, typically 4 bytes per request (9 M requests in ~36 MB).
//!
//! One record, in order:
//! 1. varint `(offset delta in µs) << 3 | flags` — the start offset minus the previous record's (a
//!    connection sends one request at a time, so offsets only grow within a stream);
//! 2. varint latency in units of 100 ns;
//! 3. if `F_OUTCOME`: varint outcome (HTTP status 100–999, or `1000 + error kind`);
//! 4. if `F_BYTES`: varint response body bytes;
//! 5. if `F_BACKEND`: varint backend index (0 = no backend header, else 1 + index into the stream's table).
//!
//! Fields 3–5 are only written when they differ from the previous record's, so a steady stream of
//! `200 OK`, same size, same backend costs just the offset and latency. A record never straddles chunks.

use super::ErrorKind;

const F_OUTCOME: u64 = 1;
const F_BYTES: u64 = 2;
const F_BACKEND: u64 = 4;
const FLAG_BITS: u32 = 3;
/// Outcome codes from this on are error kinds.
const ERROR_BASE: u64 = 1000;
/// Upper bound of one encoded record (5 varints of at most 10 bytes).
const MAX_RECORD: usize = 50;
const FIRST_CHUNK: usize = 4 << 10;
const MAX_CHUNK: usize = 1 << 20;
/// Latency unit in nanoseconds.
const LATENCY_UNIT_NS: u64 = 100;

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// An HTTP response with this status arrived (and its body was read completely).
    Status(u16),
    /// No (complete) response: the request failed this way.
    Error(ErrorKind),
}

impl RequestOutcome {
    fn code(self) -> u64 {
        match self {
            RequestOutcome::Status(s) => u64::from(s),
            RequestOutcome::Error(k) => ERROR_BASE + k as u64,
        }
    }

    fn from_code(code: u64) -> RequestOutcome {
        if code >= ERROR_BASE {
            RequestOutcome::Error(ErrorKind::from_index((code - ERROR_BASE) as usize))
        } else {
            RequestOutcome::Status(code as u16)
        }
    }
}

/// One request as stored, before its backend index is resolved to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord {
    /// Start of the request (its scheduled time under a rate) since the run began, in µs.
    pub offset_us: u64,
    /// Latency in ns, rounded down to 100 ns by the encoding.
    pub latency_ns: u64,
    pub outcome: RequestOutcome,
    pub bytes: u64,
    /// 0 = no backend header; `i + 1` = the stream's backend `i`.
    pub backend: u32,
}

/// Append-only encoded records of one connection.
#[derive(Debug, Default)]
pub struct RecordStream {
    chunks: Vec<Vec<u8>>,
    len: u64,
    prev: Prev,
}

#[derive(Debug, Default, Clone, Copy)]
struct Prev {
    offset_us: u64,
    outcome: u64,
    bytes: u64,
    backend: u32,
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

impl RecordStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes of encoded records (not counting unused chunk capacity).
    #[cfg(test)]
    pub fn encoded_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }

    #[inline]
    pub fn push(&mut self, r: &RawRecord) {
        let buf = match self.chunks.last_mut() {
            Some(c) if c.capacity() - c.len() >= MAX_RECORD => c,
            _ => {
                let cap = self
                    .chunks
                    .last()
                    .map_or(FIRST_CHUNK, |c| (c.capacity() * 2).min(MAX_CHUNK));
                self.chunks.push(Vec::with_capacity(cap));
                self.chunks.last_mut().expect("just pushed")
            }
        };
        let p = &mut self.prev;
        let outcome = r.outcome.code();
        let mut flags = 0;
        if outcome != p.outcome {
            flags |= F_OUTCOME;
        }
        if r.bytes != p.bytes {
            flags |= F_BYTES;
        }
        if r.backend != p.backend {
            flags |= F_BACKEND;
        }
        let delta = r.offset_us.saturating_sub(p.offset_us);
        put_varint(buf, (delta << FLAG_BITS) | flags);
        put_varint(buf, r.latency_ns / LATENCY_UNIT_NS);
        if flags & F_OUTCOME != 0 {
            put_varint(buf, outcome);
        }
        if flags & F_BYTES != 0 {
            put_varint(buf, r.bytes);
        }
        if flags & F_BACKEND != 0 {
            put_varint(buf, u64::from(r.backend));
        }
        *p = Prev {
            offset_us: p.offset_us + delta,
            outcome,
            bytes: r.bytes,
            backend: r.backend,
        };
        self.len += 1;
    }

    /// Decodes the records in the order they were pushed.
    pub fn iter(&self) -> Records<'_> {
        Records {
            chunks: &self.chunks,
            chunk: 0,
            pos: 0,
            prev: Prev::default(),
        }
    }
}

/// Iterator over a [`RecordStream`], carrying the delta state across chunks.
pub struct Records<'a> {
    chunks: &'a [Vec<u8>],
    chunk: usize,
    pos: usize,
    prev: Prev,
}

impl Iterator for Records<'_> {
    type Item = RawRecord;

    fn next(&mut self) -> Option<RawRecord> {
        let mut buf = self.chunks.get(self.chunk)?;
        while self.pos >= buf.len() {
            self.chunk += 1;
            self.pos = 0;
            buf = self.chunks.get(self.chunk)?;
        }
        let (pos, prev) = (&mut self.pos, &mut self.prev);
        let head = get_varint(buf, pos);
        let flags = head & ((1 << FLAG_BITS) - 1);
        prev.offset_us += head >> FLAG_BITS;
        let latency_ns = get_varint(buf, pos) * LATENCY_UNIT_NS;
        if flags & F_OUTCOME != 0 {
            prev.outcome = get_varint(buf, pos);
        }
        if flags & F_BYTES != 0 {
            prev.bytes = get_varint(buf, pos);
        }
        if flags & F_BACKEND != 0 {
            prev.backend = get_varint(buf, pos) as u32;
        }
        Some(RawRecord {
            offset_us: prev.offset_us,
            latency_ns,
            outcome: RequestOutcome::from_code(prev.outcome),
            bytes: prev.bytes,
            backend: prev.backend,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        offset_us: u64,
        latency_ns: u64,
        outcome: RequestOutcome,
        bytes: u64,
        backend: u32,
    ) -> RawRecord {
        RawRecord {
            offset_us,
            latency_ns,
            outcome,
            bytes,
            backend,
        }
    }

    #[test]
    fn records_round_trip_including_errors_and_backend_changes() {
        let input = vec![
            rec(0, 48_300, RequestOutcome::Status(200), 612, 1),
            rec(70, 51_200, RequestOutcome::Status(200), 612, 2),
            rec(
                70,
                9_000_000_000,
                RequestOutcome::Error(ErrorKind::Timeout),
                0,
                0,
            ),
            rec(
                9_000_070,
                1_000,
                RequestOutcome::Error(ErrorKind::ConnectRefused),
                0,
                0,
            ),
            rec(9_000_100, 120_000, RequestOutcome::Status(503), 7, 1),
            rec(
                u32::MAX as u64 * 10,
                3_600_000_000_000,
                RequestOutcome::Status(999),
                u64::MAX,
                300,
            ),
        ];
        let mut s = RecordStream::new();
        for r in &input {
            s.push(r);
        }
        assert_eq!(s.len(), input.len() as u64);
        let out: Vec<RawRecord> = s.iter().collect();
        assert_eq!(out, input);
    }

    #[test]
    fn steady_ok_responses_cost_about_four_bytes_each() {
        let mut s = RecordStream::new();
        for i in 0..100_000u64 {
            s.push(&rec(
                i * 300,
                250_000 + (i % 7) * 1_000,
                RequestOutcome::Status(200),
                612,
                0,
            ));
        }
        let per = s.encoded_bytes() as f64 / s.len() as f64;
        assert!(per <= 4.01, "{per} bytes per record");
        assert_eq!(s.iter().count(), 100_000);
        assert_eq!(s.iter().last().unwrap().offset_us, 99_999 * 300);
    }

    #[test]
    fn latency_is_kept_to_a_tenth_of_a_microsecond() {
        let mut s = RecordStream::new();
        s.push(&rec(0, 123_456, RequestOutcome::Status(200), 0, 0));
        assert_eq!(s.iter().next().unwrap().latency_ns, 123_400);
    }

    #[test]
    fn records_span_many_chunks_without_loss() {
        let mut s = RecordStream::new();
        let n = 3_000_000u64;
        for i in 0..n {
            s.push(&rec(i, i * 100, RequestOutcome::Status(200), i % 3, 0));
        }
        assert!(s.chunks.len() > 3);
        let mut count = 0;
        for (i, r) in s.iter().enumerate() {
            assert_eq!(
                (r.offset_us, r.latency_ns, r.bytes),
                (i as u64, i as u64 * 100, i as u64 % 3)
            );
            count += 1;
        }
        assert_eq!(count, n);
    }
}
