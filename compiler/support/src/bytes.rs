//! `Bytes`, the type of the language's byte strings (`"..."` literals).
//!
//! Values are immutable and cheap to clone, because states are cloned
//! millions of times by the checker and values are copied into logs by the
//! runtime: a literal of the spec is a `&'static [u8]` (cloning copies a
//! pointer, building one allocates nothing, so it can be a `const`), any
//! other value shares one `Arc<[u8]>` (cloning bumps a count). Equality,
//! order and hashing look at the bytes only, never at where they live.
//!
//! serde writes the bytes as a byte string (`serialize_bytes`: in postcard a
//! length and the raw bytes). `Debug` and `Display` print a string literal
//! of the spec language, so traces stay readable and can be pasted back:
//! printable ASCII as itself, `\"`, `\\`, `\n`, `\r`, `\t`, and every other
//! byte as `\xNN`. `FromStr` (the client command line) takes plain text, a
//! literal in quotes with those escapes, or `0x` and hex digits.

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone)]
pub struct Bytes(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static [u8]),
    Shared(Arc<[u8]>),
}

impl Bytes {
    /// A literal: no allocation, usable in a `const`.
    pub const fn from_static(bytes: &'static [u8]) -> Bytes {
        Bytes(Repr::Static(bytes))
    }

    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Static(b) => b,
            Repr::Shared(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }

    /// `a + b`: the bytes of `self`, then those of `other`, in a new value
    /// (either side as it is when the other is empty).
    pub fn concat(&self, other: &Bytes) -> Bytes {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let mut v = Vec::with_capacity(self.len() + other.len());
        v.extend_from_slice(self.as_slice());
        v.extend_from_slice(other.as_slice());
        Bytes(Repr::Shared(Arc::from(v)))
    }

    /// Decodes the inside of a string literal (without its quotes): the
    /// escapes of the spec language. The error names the offending escape.
    pub fn from_escaped(text: &str) -> Result<Bytes, String> {
        let mut out = Vec::with_capacity(text.len());
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            let byte = match chars.next().map(|(_, e)| e) {
                Some('\\') => b'\\',
                Some('"') => b'"',
                Some('n') => b'\n',
                Some('r') => b'\r',
                Some('t') => b'\t',
                Some('0') => 0,
                Some('x') => {
                    let hex = text
                        .get(i + 2..i + 4)
                        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            chars.next();
                            chars.next();
                            b
                        }
                        None => {
                            let shown: String = text[i..].chars().take(4).collect();
                            return Err(format!("`{shown}`: `\\x` takes two hex digits, as in `\\x0a`"));
                        }
                    }
                }
                Some(e) => return Err(format!("unknown escape `\\{e}`")),
                None => return Err("a `\\` at the end needs a character to escape".to_string()),
            };
            out.push(byte);
        }
        Ok(Bytes::from(out))
    }
}

impl Default for Bytes {
    fn default() -> Bytes {
        Bytes::from_static(b"")
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes(Repr::Shared(Arc::from(v)))
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Bytes {
        Bytes(Repr::Shared(Arc::from(v)))
    }
}

impl From<&str> for Bytes {
    fn from(v: &str) -> Bytes {
        Bytes::from(v.as_bytes())
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Bytes {}

impl PartialOrd for Bytes {
    fn partial_cmp(&self, other: &Bytes) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Lexicographic by byte, a prefix first: the order of `<` in a spec.
impl Ord for Bytes {
    fn cmp(&self, other: &Bytes) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.as_slice() {
            match b {
                b'"' => f.write_str("\\\"")?,
                b'\\' => f.write_str("\\\\")?,
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                0x20..=0x7e => write!(f, "{}", b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A command-line argument: `0x` and an even number of hex digits; a
/// literal in double quotes with the spec's escapes (`"\xff\x00"`); or
/// else the text itself, as UTF-8.
impl FromStr for Bytes {
    type Err = String;
    fn from_str(s: &str) -> Result<Bytes, String> {
        if let Some(hex) = s.strip_prefix("0x") {
            if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "`{s}` is not hex bytes (`0x` and an even number of hex digits); for the text itself, quote it: '\"{s}\"'"
                ));
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string()))
                .collect::<Result<Vec<u8>, String>>()?;
            return Ok(Bytes::from(bytes));
        }
        if let Some(inner) = s
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|_| s.len() >= 2)
        {
            return Bytes::from_escaped(inner).map_err(|e| format!("in {s}: {e}"));
        }
        Ok(Bytes::from(s))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    /// Formats without a byte-string type (JSON) write a sequence of numbers.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn debug_is_a_spec_literal() {
        let b = Bytes::from(vec![b'a', b'"', b'\\', b'\n', 0, 0x7f, 0xff, b' ', b'~']);
        assert_eq!(format!("{b:?}"), r#""a\"\\\n\x00\x7f\xff ~""#);
        assert_eq!(format!("{b}"), format!("{b:?}"));
        assert_eq!(format!("{:?}", Bytes::default()), "\"\"");
        // Some(..) inside a derived Debug stays readable.
        assert_eq!(format!("{:?}", Some(Bytes::from_static(b"hi"))), "Some(\"hi\")");
    }

    #[test]
    fn escapes_round_trip_through_debug() {
        let all: Vec<u8> = (0..=255).collect();
        let b = Bytes::from(all);
        let text = format!("{b:?}");
        let inner = &text[1..text.len() - 1];
        assert_eq!(Bytes::from_escaped(inner).unwrap(), b);
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert_eq!(Bytes::from_escaped(r"a\q").unwrap_err(), "unknown escape `\\q`");
        assert!(Bytes::from_escaped(r"\x4").unwrap_err().contains("two hex digits"));
        assert!(Bytes::from_escaped(r"\xg0").unwrap_err().contains("two hex digits"));
        assert!(Bytes::from_escaped("\\").is_err());
        assert_eq!(Bytes::from_escaped("é\\x41").unwrap().as_slice(), "éA".as_bytes());
    }

    #[test]
    fn command_line_forms() {
        assert_eq!("hello".parse::<Bytes>().unwrap().as_slice(), b"hello");
        assert_eq!("".parse::<Bytes>().unwrap().as_slice(), b"");
        assert_eq!("0x00ff41".parse::<Bytes>().unwrap().as_slice(), &[0, 0xff, 0x41]);
        assert_eq!("0xABcd".parse::<Bytes>().unwrap().as_slice(), &[0xab, 0xcd]);
        assert!("0x123".parse::<Bytes>().is_err());
        assert!("0xzz".parse::<Bytes>().is_err());
        assert!("0xé1".parse::<Bytes>().is_err());
        assert_eq!(r#""0x12""#.parse::<Bytes>().unwrap().as_slice(), b"0x12");
        assert_eq!(r#""\xff\n""#.parse::<Bytes>().unwrap().as_slice(), &[0xff, b'\n']);
        assert!(r#""\q""#.parse::<Bytes>().is_err());
        // A lone quote is text.
        assert_eq!("\"".parse::<Bytes>().unwrap().as_slice(), b"\"");
    }

    #[test]
    fn identity_is_the_bytes_not_the_storage() {
        let a = Bytes::from_static(b"abc");
        let b = Bytes::from(b"abc".to_vec());
        assert_eq!(a, b);
        let h = std::collections::hash_map::RandomState::new();
        assert_eq!(h.hash_one(&a), h.hash_one(&b));
        assert!(Bytes::from_static(b"ab") < a);
        assert!(a < Bytes::from(vec![b'b']));
        assert!(Bytes::from_static(b"\xff") > a);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn serde_writes_a_byte_string() {
        let b = Bytes::from_static(b"xyz");
        let wire = postcard::to_stdvec(&b).unwrap();
        assert_eq!(wire, vec![3, b'x', b'y', b'z']);
        let back: Bytes = postcard::from_bytes(&wire).unwrap();
        assert_eq!(back, b);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "[120,121,122]");
        assert_eq!(serde_json::from_str::<Bytes>(&json).unwrap(), b);
        assert_eq!(serde_json::from_str::<Bytes>("\"xyz\"").unwrap(), b);
    }

    #[test]
    fn clones_share() {
        let b = Bytes::from(vec![1u8; 100]);
        let c = b.clone();
        assert_eq!(b.as_slice().as_ptr(), c.as_slice().as_ptr());
        assert!(std::mem::size_of::<Bytes>() <= 24);
    }
}
