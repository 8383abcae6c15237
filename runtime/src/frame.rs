//! The wire format shared by peers and clients.
//!
//! Every frame is a fixed 28-byte header followed by a payload:
//!
//! | bytes  | field                                                   |
//! |--------|---------------------------------------------------------|
//! | 0..2   | magic `b"SM"`                                           |
//! | 2      | format version ([`VERSION`])                            |
//! | 3      | kind ([`Kind`])                                         |
//! | 4..8   | payload length, u32 little-endian                       |
//! | 8..16  | cluster id, u64 little-endian                           |
//! | 16..24 | sender id, u64 little-endian (a server id, or 0 from a client) |
//! | 24..28 | crc32c of bytes 0..24 followed by the payload           |
//!
//! The header is validated (magic, version, kind, length against the limit)
//! before a single payload byte is read, so a hostile length cannot make a
//! node allocate more than the limit. The checksum covers the header and the
//! payload, so a frame is either delivered exactly as it was sent or not at
//! all: the model checker assumes messages may be lost but never corrupted.
//! Payloads are `postcard`; a payload must decode completely, with no bytes
//! left over.

use serde::{de::DeserializeOwned, Serialize};
use std::fmt;

pub const MAGIC: [u8; 2] = *b"SM";
/// 3: peer links number their messages (acks, pings, resends) and the
/// hello says what the sender wrote before; 2 tagged client requests and
/// responses with the client's session and sequence number; 1 with a
/// per-connection request id.
pub const VERSION: u8 = 3;
pub const HEADER_LEN: usize = 28;
/// The default limit on a frame's payload. A protocol message larger than
/// this is dropped by the sender (and would be rejected by the receiver).
pub const PAYLOAD_BYTES_MAX: usize = 16 << 20;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The first frame of a peer connection: the sender's protocol name
    /// and incarnation ([`Hello`]).
    Hello = 1,
    /// A protocol message between servers: `(link sequence number, the
    /// message's own encoding)`.
    Peer = 2,
    /// A client request: `(tag, P::Request)`, the tag naming the client's
    /// session and the request's sequence number in it.
    Request = 3,
    /// An answer to a client: [`Response`].
    Response = 4,
    /// From the receiving end of a peer link: every message up to this link
    /// sequence number (a `u64`) arrived.
    Ack = 5,
    /// On a quiet peer link: asks for an `Ack` (a link with no answer is
    /// dead, and the sender reconnects).
    Ping = 6,
    /// On a client connection: `()` asks for the node's status, answered
    /// with a `Status` frame carrying an `admin::NodeStatus`.
    Status = 7,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Peer,
            3 => Kind::Request,
            4 => Kind::Response,
            5 => Kind::Ack,
            6 => Kind::Ping,
            7 => Kind::Status,
            _ => return None,
        })
    }
}

/// The payload of a `Hello` frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Hello {
    pub protocol: String,
    /// Drawn at every start of the sending process: a receiver that sees a
    /// new one starts the link's numbering over.
    pub incarnation: u64,
    /// The last message number this sender incarnation has written to any
    /// earlier connection of the link (0 if none; messages numbered while
    /// the link was down were never written, and are not counted). A receiver that has
    /// not seen this incarnation before — it restarted since, having read
    /// some of them or none — skips them all: delivering one again could
    /// repeat what its previous incarnation handled, which the model never
    /// does; losing them is the model's loss at a crash.
    pub written: u64,
}

/// What a node sends back on a client connection, tagged like the request
/// it answers (session and sequence number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Response<Rep> {
    Reply(smelt_support::Client, Rep),
    /// The node declined the request; `Some(id)` names a server to try.
    Redirect(smelt_support::Client, Option<u64>),
    /// The request's tag makes no sense (see `client::check_tag`); it never
    /// reached the protocol.
    Invalid(smelt_support::Client, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub len: u32,
    pub cluster: u64,
    pub sender: u64,
    pub crc: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub cluster: u64,
    pub sender: u64,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    BadMagic([u8; 2]),
    BadVersion(u8),
    BadKind(u8),
    TooLarge {
        len: u64,
        max: u64,
    },
    BadChecksum {
        stored: u32,
        computed: u32,
    },
    /// The payload does not decode as the expected type.
    BadPayload(String),
    /// The frame is valid but does not belong on this connection.
    Rejected(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic(m) => write!(f, "bad magic {m:02x?}"),
            FrameError::BadVersion(v) => write!(f, "unsupported frame version {v} (this node speaks {VERSION})"),
            FrameError::BadKind(k) => write!(f, "unknown frame kind {k}"),
            FrameError::TooLarge { len, max } => write!(f, "frame payload of {len} bytes exceeds the limit of {max}"),
            FrameError::BadChecksum { stored, computed } => {
                write!(f, "checksum mismatch (stored {stored:08x}, computed {computed:08x})")
            }
            FrameError::BadPayload(e) => write!(f, "payload does not decode: {e}"),
            FrameError::Rejected(why) => write!(f, "frame rejected: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl Header {
    /// Validates everything that can be validated before the payload is read.
    pub fn parse(b: &[u8; HEADER_LEN], payload_bytes_max: usize) -> Result<Header, FrameError> {
        if b[0..2] != MAGIC {
            return Err(FrameError::BadMagic([b[0], b[1]]));
        }
        if b[2] != VERSION {
            return Err(FrameError::BadVersion(b[2]));
        }
        let kind = Kind::from_u8(b[3]).ok_or(FrameError::BadKind(b[3]))?;
        let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if len as u64 > payload_bytes_max as u64 {
            return Err(FrameError::TooLarge {
                len: len as u64,
                max: payload_bytes_max as u64,
            });
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        Ok(Header {
            kind,
            len,
            cluster: u64_at(8),
            sender: u64_at(16),
            crc: u32::from_le_bytes([b[24], b[25], b[26], b[27]]),
        })
    }

    /// Checks the payload against the header's checksum.
    pub fn verify(&self, raw_header: &[u8; HEADER_LEN], payload: &[u8]) -> Result<(), FrameError> {
        let computed = crc32c::crc32c_append(crc32c::crc32c(&raw_header[..24]), payload);
        if computed != self.crc {
            return Err(FrameError::BadChecksum {
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }
}

/// Encodes a frame around `value`'s postcard encoding. Fails when the value
/// does not serialize or the payload would exceed `payload_bytes_max`.
pub fn encode<T: Serialize + ?Sized>(
    kind: Kind,
    cluster: u64,
    sender: u64,
    value: &T,
    payload_bytes_max: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; HEADER_LEN];
    let mut buf = postcard::to_extend(value, std::mem::take(&mut buf))
        .map_err(|e| FrameError::BadPayload(format!("cannot encode: {e}")))?;
    let len = buf.len() - HEADER_LEN;
    if len > payload_bytes_max || len > u32::MAX as usize {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max: payload_bytes_max as u64,
        });
    }
    buf[0..2].copy_from_slice(&MAGIC);
    buf[2] = VERSION;
    buf[3] = kind as u8;
    buf[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    buf[8..16].copy_from_slice(&cluster.to_le_bytes());
    buf[16..24].copy_from_slice(&sender.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&buf[..24]), &buf[HEADER_LEN..]);
    buf[24..28].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

/// Decodes one frame from the front of `buf`: `Ok(None)` when more bytes
/// are needed, `Ok(Some((frame, consumed)))` for a valid frame. Any error
/// means the stream is unusable and the connection must be closed.
pub fn decode(buf: &[u8], payload_bytes_max: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(raw) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let mut raw_header = [0u8; HEADER_LEN];
    raw_header.copy_from_slice(raw);
    let header = Header::parse(&raw_header, payload_bytes_max)?;
    let end = HEADER_LEN + header.len as usize;
    let Some(payload) = buf.get(HEADER_LEN..end) else {
        return Ok(None);
    };
    header.verify(&raw_header, payload)?;
    let frame = Frame {
        kind: header.kind,
        cluster: header.cluster,
        sender: header.sender,
        payload: payload.to_vec(),
    };
    Ok(Some((frame, end)))
}

/// Decodes a payload completely: trailing bytes are an error, because a
/// frame that carries more than its message was not produced by `encode`.
pub fn payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(FrameError::BadPayload(format!("{} trailing bytes", rest.len()))),
        Err(e) => Err(FrameError::BadPayload(e.to_string())),
    }
}

/// The cluster id on the wire: a stable 64-bit hash (FNV-1a) of the cluster
/// file's `cluster_id` string, so that frames of another cluster, or of a
/// stale process of an old one, are rejected.
pub fn cluster_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode(Kind::Peer, 7, 2, &(1u64, "hi"), PAYLOAD_BYTES_MAX).unwrap();
        let (frame, used) = decode(&bytes, PAYLOAD_BYTES_MAX).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!((frame.kind, frame.cluster, frame.sender), (Kind::Peer, 7, 2));
        let v: (u64, String) = payload(&frame.payload).unwrap();
        assert_eq!(v, (1, "hi".to_string()));
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], PAYLOAD_BYTES_MAX), Ok(None));
        }
    }

    #[test]
    fn rejects_oversized_before_reading() {
        let mut bytes = encode(Kind::Peer, 7, 2, &[0u8; 100][..], PAYLOAD_BYTES_MAX).unwrap();
        assert!(matches!(decode(&bytes, 50), Err(FrameError::TooLarge { .. })));
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&bytes[..HEADER_LEN], PAYLOAD_BYTES_MAX),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(encode(Kind::Peer, 7, 2, &[0u8; 100][..], 50).is_err());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = encode(Kind::Request, 9, 0, &(5u64, 6u64), PAYLOAD_BYTES_MAX).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            // A flip in the length field may only make the decoder wait for
            // more bytes; it must never yield a frame.
            assert!(!matches!(decode(&b, PAYLOAD_BYTES_MAX), Ok(Some(_))), "bit {i}");
        }
    }

    #[test]
    fn trailing_payload_bytes_are_rejected() {
        let mut p = postcard::to_stdvec(&3u64).unwrap();
        p.push(0);
        assert!(payload::<u64>(&p).is_err());
    }
}
