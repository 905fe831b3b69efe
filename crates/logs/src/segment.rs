//! The on-disk format of a stream's events: append-only segment files of checksummed
//! frames, one frame per PutLogEvents batch.
//!
//! ```text
//! frame  = header body
//! header = magic u32 | body_len u32 | crc32(count..end of body) u32 | count u32
//!        | first_ordinal u64 | min_ts i64 | max_ts i64 | ingestion i64 | cursor_len u16
//! body   = cursor bytes | count × (zigzag-varint timestamp delta | varint length | message)
//! ```
//! All integers little-endian. A frame's timestamps are deltas from the previous event's
//! (the first from `min_ts`), so an event costs its message plus 2–4 bytes. A frame whose
//! checksum fails, or that is cut short, can only be the unacknowledged tail of the last
//! write (a put is acknowledged after its frame is synced): it is cut off when the segment
//! is opened.

use std::fs::File;
use std::io::{self, Read};

pub const MAGIC: u32 = 0xB3C7_106E;
pub const HEADER_LEN: usize = 4 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 2;

/// An event as a put hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputEvent {
    pub timestamp: i64,
    pub message: String,
}

/// What a frame's header says, and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub body_len: u32,
    pub crc: u32,
    pub count: u32,
    pub first_ordinal: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub ingestion: i64,
    pub cursor_len: u16,
}

impl FrameHeader {
    pub fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.body_len)
    }

    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Option<FrameHeader> {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        if u32_at(0) != MAGIC {
            return None;
        }
        Some(FrameHeader {
            body_len: u32_at(4),
            crc: u32_at(8),
            count: u32_at(12),
            first_ordinal: u64_at(16),
            min_ts: u64_at(24) as i64,
            max_ts: u64_at(32) as i64,
            ingestion: u64_at(40) as i64,
            cursor_len: u16::from_le_bytes([bytes[48], bytes[49]]),
        })
    }
}

/// Encodes one frame. `events` must be in chronological order (the caller checks).
pub fn encode_frame(
    events: &[InputEvent],
    first_ordinal: u64,
    ingestion: i64,
    cursor: Option<&str>,
) -> Vec<u8> {
    let min_ts = events.first().map_or(0, |e| e.timestamp);
    let max_ts = events.iter().map(|e| e.timestamp).max().unwrap_or(0);
    let cursor = cursor.unwrap_or("").as_bytes();
    let payload: usize = events.iter().map(|e| e.message.len() + 6).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + cursor.len() + payload);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // body_len, crc: filled in below
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    out.extend_from_slice(&first_ordinal.to_le_bytes());
    out.extend_from_slice(&min_ts.to_le_bytes());
    out.extend_from_slice(&max_ts.to_le_bytes());
    out.extend_from_slice(&ingestion.to_le_bytes());
    out.extend_from_slice(&(cursor.len() as u16).to_le_bytes());
    out.extend_from_slice(cursor);
    let mut previous = min_ts;
    for e in events {
        put_varint(&mut out, zigzag(e.timestamp.wrapping_sub(previous)));
        previous = e.timestamp;
        put_varint(&mut out, e.message.len() as u64);
        out.extend_from_slice(e.message.as_bytes());
    }
    let body_len = (out.len() - HEADER_LEN) as u32;
    out[4..8].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32(&out[12..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A decoded event, borrowing its message from the frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub ordinal: u64,
    pub timestamp: i64,
    pub ingestion: i64,
    pub message: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt log segment: {0}")]
pub struct Corrupt(pub &'static str);

/// Walks the frames in `bytes` (whole frames, as a block of the index covers), calling
/// `visit` on every event in order; `visit` returns `false` to stop.
pub fn decode_frames<'a>(
    mut bytes: &'a [u8],
    mut visit: impl FnMut(EventRef<'a>) -> bool,
) -> Result<(), Corrupt> {
    while !bytes.is_empty() {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Corrupt("short frame header"))?;
        let header = FrameHeader::parse(header).ok_or(Corrupt("bad frame magic"))?;
        let end = HEADER_LEN + header.body_len as usize;
        let body = bytes
            .get(HEADER_LEN..end)
            .ok_or(Corrupt("short frame body"))?;
        let mut pos = usize::from(header.cursor_len);
        let mut ts = header.min_ts;
        for i in 0..u64::from(header.count) {
            let delta = unzigzag(get_varint(body, &mut pos).ok_or(Corrupt("bad timestamp"))?);
            ts = ts.wrapping_add(delta);
            let len = get_varint(body, &mut pos).ok_or(Corrupt("bad length"))? as usize;
            let message = body.get(pos..pos + len).ok_or(Corrupt("short message"))?;
            pos += len;
            let message = std::str::from_utf8(message).map_err(|_| Corrupt("message not UTF-8"))?;
            let event = EventRef {
                ordinal: header.first_ordinal + i,
                timestamp: ts,
                ingestion: header.ingestion,
                message,
            };
            if !visit(event) {
                return Ok(());
            }
        }
        bytes = &bytes[end..];
    }
    Ok(())
}

/// The cursor a frame carries (empty when none).
pub fn frame_cursor(frame: &[u8]) -> Option<&str> {
    let header = FrameHeader::parse(frame.get(..HEADER_LEN)?.try_into().ok()?)?;
    let cursor = frame.get(HEADER_LEN..HEADER_LEN + usize::from(header.cursor_len))?;
    std::str::from_utf8(cursor).ok().filter(|c| !c.is_empty())
}

/// Reads the header at the reader's position; `Ok(None)` at a clean end of file or a torn
/// header.
pub fn read_header(file: &mut impl Read) -> io::Result<Option<FrameHeader>> {
    let mut buf = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match file.read(&mut buf[filled..])? {
            0 => return Ok(None),
            n => filled += n,
        }
    }
    Ok(FrameHeader::parse(&buf))
}

/// Reads `len` bytes at `offset` (positioned read; the file handle is shared by readers).
pub fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// Whether a whole frame's checksum holds.
pub fn frame_intact(frame: &[u8]) -> bool {
    let Some(header) = frame
        .get(..HEADER_LEN)
        .and_then(|h| FrameHeader::parse(h.try_into().ok()?))
    else {
        return false;
    };
    frame.len() as u64 == header.frame_len() && crc32(&frame[12..]) == header.crc
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

/// CRC-32 (IEEE 802.3), slicing by 8.
pub fn crc32(bytes: &[u8]) -> u32 {
    let t = &*CRC_TABLES;
    let mut crc = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

static CRC_TABLES: std::sync::LazyLock<[[u32; 256]; 8]> = std::sync::LazyLock::new(|| {
    let mut t = [[0u32; 256]; 8];
    for i in 0..256u32 {
        let mut c = i;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        t[0][i as usize] = c;
    }
    for i in 0..256 {
        for k in 1..8 {
            let prev = t[k - 1][i];
            t[k][i] = t[0][(prev & 0xff) as usize] ^ (prev >> 8);
        }
    }
    t
});

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64, m: &str) -> InputEvent {
        InputEvent {
            timestamp: ts,
            message: m.to_string(),
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        // Slicing by 8 agrees with the bytewise loop on any length.
        for n in [0, 1, 7, 8, 9, 15, 16, 999, 1000] {
            let mut crc = !0u32;
            for &b in &long[..n] {
                crc = CRC_TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
            }
            assert_eq!(crc32(&long[..n]), !crc, "length {n}");
        }
    }

    #[test]
    fn frames_round_trip_with_cursor_and_negative_deltas() {
        let events = vec![
            ev(1_700_000_000_000, "first"),
            ev(1_700_000_000_005, ""),
            ev(1_700_000_000_005, "héllo\nworld"),
        ];
        let mut bytes = encode_frame(&events, 40, 1_700_000_001_000, Some("cur-1"));
        bytes.extend(encode_frame(&[ev(-5, "old"), ev(3, "x")], 43, 7, None));
        assert!(frame_intact(
            &bytes[..bytes.len() - encode_frame(&[ev(-5, "old"), ev(3, "x")], 43, 7, None).len()]
        ));
        assert_eq!(frame_cursor(&bytes), Some("cur-1"));
        let mut seen = Vec::new();
        decode_frames(&bytes, |e| {
            seen.push((e.ordinal, e.timestamp, e.ingestion, e.message.to_string()));
            true
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (40, 1_700_000_000_000, 1_700_000_001_000, "first".into()),
                (41, 1_700_000_000_005, 1_700_000_001_000, "".into()),
                (
                    42,
                    1_700_000_000_005,
                    1_700_000_001_000,
                    "héllo\nworld".into()
                ),
                (43, -5, 7, "old".into()),
                (44, 3, 7, "x".into()),
            ]
        );
    }

    #[test]
    fn damage_is_detected() {
        let mut frame = encode_frame(&[ev(1, "abc")], 0, 1, None);
        assert!(frame_intact(&frame));
        let last = frame.len() - 1;
        frame[last] ^= 1;
        assert!(!frame_intact(&frame));
        assert!(!frame_intact(&frame[..frame.len() - 1]));
        assert!(decode_frames(&frame[..HEADER_LEN + 1], |_| true).is_err());
    }
}
