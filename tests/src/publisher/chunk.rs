//! The RTMP chunk stream: splitting messages into chunks and putting them back together.

use std::collections::HashMap;

use super::RtmpError;

/// A complete RTMP message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Chunk stream id it travelled on.
    pub csid: u32,
    /// Timestamp in milliseconds.
    pub timestamp: u32,
    /// Message type (1 set chunk size, 20 AMF0 command, 8 audio, 9 video, …).
    pub kind: u8,
    /// Message stream id.
    pub stream: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Encodes `message` as chunks of at most `chunk_size` bytes (fmt 0, then fmt 3).
pub fn write(message: &Message, chunk_size: usize, out: &mut Vec<u8>) {
    let extended = message.timestamp >= 0xFF_FFFF;
    let basic = |fmt: u8, out: &mut Vec<u8>| {
        // csid 2..=63 in one byte (all we use).
        out.push((fmt << 6) | (message.csid as u8 & 0x3f));
    };
    basic(0, out);
    let ts = if extended {
        0xFF_FFFF
    } else {
        message.timestamp
    };
    out.extend_from_slice(&ts.to_be_bytes()[1..]);
    out.extend_from_slice(&(message.payload.len() as u32).to_be_bytes()[1..]);
    out.push(message.kind);
    out.extend_from_slice(&message.stream.to_le_bytes());
    if extended {
        out.extend_from_slice(&message.timestamp.to_be_bytes());
    }
    for (i, part) in message.payload.chunks(chunk_size.max(1)).enumerate() {
        if i > 0 {
            basic(3, out);
            if extended {
                out.extend_from_slice(&message.timestamp.to_be_bytes());
            }
        }
        out.extend_from_slice(part);
    }
    if message.payload.is_empty() {
        // A zero-length message is just its header.
    }
}

/// Per chunk stream state of the reader.
#[derive(Default, Clone)]
struct Stream {
    timestamp: u32,
    delta: u32,
    length: usize,
    kind: u8,
    stream: u32,
    extended: bool,
    partial: Vec<u8>,
}

/// Reassembles messages from incoming bytes.
#[derive(Default)]
pub struct Reader {
    /// Bytes not consumed yet.
    buffer: Vec<u8>,
    /// Chunk stream states.
    streams: HashMap<u32, Stream>,
    /// Incoming chunk size (the peer's Set Chunk Size).
    pub chunk_size: usize,
}

impl Reader {
    /// Builds a reader with the default 128-byte chunk size.
    pub fn new() -> Self {
        Self {
            chunk_size: 128,
            ..Self::default()
        }
    }

    /// Adds received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Returns the next complete message, `Ok(None)` when more bytes are needed.
    /// Applies Set Chunk Size messages itself.
    pub fn next_message(&mut self) -> Result<Option<Message>, RtmpError> {
        loop {
            let Some((consumed, message)) = self.try_chunk()? else {
                return Ok(None);
            };
            self.buffer.drain(..consumed);
            if let Some(message) = message {
                if message.kind == 1 && message.payload.len() >= 4 {
                    let size = u32::from_be_bytes([
                        message.payload[0],
                        message.payload[1],
                        message.payload[2],
                        message.payload[3],
                    ]);
                    self.chunk_size = (size & 0x7fff_ffff).max(1) as usize;
                }
                return Ok(Some(message));
            }
        }
    }

    /// Parses one chunk at the front of the buffer: bytes consumed and the message
    /// it completed, if any; `None` when the chunk is not all there yet.
    fn try_chunk(&mut self) -> Result<Option<(usize, Option<Message>)>, RtmpError> {
        let b = &self.buffer;
        if b.is_empty() {
            return Ok(None);
        }
        let fmt = b[0] >> 6;
        let (csid, mut at) = match b[0] & 0x3f {
            0 if b.len() >= 2 => (u32::from(b[1]) + 64, 2),
            1 if b.len() >= 3 => (u32::from(b[2]) * 256 + u32::from(b[1]) + 64, 3),
            0 | 1 => return Ok(None),
            id => (u32::from(id), 1),
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        if b.len() < at + header_len {
            return Ok(None);
        }
        let mut s = self.streams.get(&csid).cloned().unwrap_or_default();
        if fmt != 0 && !self.streams.contains_key(&csid) {
            return Err(RtmpError::Protocol(format!(
                "chunk fmt {fmt} on unknown chunk stream {csid}"
            )));
        }
        let u24 = |i: usize| u32::from_be_bytes([0, b[i], b[i + 1], b[i + 2]]);
        let mut ts_field = None;
        if fmt <= 2 {
            ts_field = Some(u24(at));
        }
        if fmt <= 1 {
            s.length = u24(at + 3) as usize;
            s.kind = b[at + 6];
        }
        if fmt == 0 {
            s.stream = u32::from_le_bytes([b[at + 7], b[at + 8], b[at + 9], b[at + 10]]);
        }
        at += header_len;
        let extended = match ts_field {
            Some(v) => v == 0xFF_FFFF,
            None => s.extended,
        };
        let mut value = ts_field.unwrap_or(0);
        if extended {
            if b.len() < at + 4 {
                return Ok(None);
            }
            value = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            at += 4;
        }
        let starting = s.partial.is_empty();
        if starting {
            match fmt {
                0 => s.timestamp = value,
                1 | 2 => {
                    s.delta = value;
                    s.timestamp = s.timestamp.wrapping_add(value);
                }
                _ => s.timestamp = s.timestamp.wrapping_add(s.delta),
            }
        }
        s.extended = extended;
        if s.length > 16 * 1024 * 1024 {
            return Err(RtmpError::Protocol(format!(
                "message of {} bytes",
                s.length
            )));
        }
        let take = (s.length - s.partial.len()).min(self.chunk_size);
        if b.len() < at + take {
            return Ok(None);
        }
        s.partial.extend_from_slice(&b[at..at + take]);
        at += take;
        let message = if s.partial.len() == s.length {
            Some(Message {
                csid,
                timestamp: s.timestamp,
                kind: s.kind,
                stream: s.stream,
                payload: std::mem::take(&mut s.partial),
            })
        } else {
            None
        };
        self.streams.insert(csid, s);
        Ok(Some((at, message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_across_chunks_and_extended_timestamps() {
        let big = Message {
            csid: 6,
            timestamp: 0x0100_0000,
            kind: 9,
            stream: 1,
            payload: (0..1000u32).map(|i| i as u8).collect(),
        };
        let small = Message {
            csid: 3,
            timestamp: 5,
            kind: 20,
            stream: 0,
            payload: vec![1, 2, 3],
        };
        let mut bytes = Vec::new();
        write(&big, 128, &mut bytes);
        write(&small, 128, &mut bytes);
        let mut reader = Reader::new();
        // Byte by byte, to exercise partial chunks.
        let mut got = Vec::new();
        for b in bytes {
            reader.feed(&[b]);
            while let Some(m) = reader.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![big, small]);
    }

    #[test]
    fn set_chunk_size_applies_to_what_follows() {
        let mut bytes = Vec::new();
        write(
            &Message {
                csid: 2,
                timestamp: 0,
                kind: 1,
                stream: 0,
                payload: 4096u32.to_be_bytes().to_vec(),
            },
            128,
            &mut bytes,
        );
        let big = Message {
            csid: 4,
            timestamp: 1,
            kind: 8,
            stream: 1,
            payload: vec![7; 3000],
        };
        write(&big, 4096, &mut bytes);
        let mut reader = Reader::new();
        reader.feed(&bytes);
        assert_eq!(reader.next_message().unwrap().unwrap().kind, 1);
        assert_eq!(reader.chunk_size, 4096);
        assert_eq!(reader.next_message().unwrap().unwrap(), big);
        assert!(reader.next_message().unwrap().is_none());
    }
}
