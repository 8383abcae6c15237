//! Request arguments given on the command line (`smelt client ... txn
//! 1=a,2=b 3=c`): scalars parse with `FromStr`; a map is written
//! `key=value,key=value`, or `{}` for an empty one.

use crate::Map;
use std::str::FromStr;

/// The most entries one map argument may have: a bound on what a typo can
/// make the client build (the spec's own limits, e.g. raft.sm's
/// `MAX_TXN_KEYS`, are far below it).
pub const MAP_ENTRIES_MAX: usize = 4096;

/// Parses `k=v,k=v` (or `{}`). A comma or `=` inside a double-quoted value
/// is part of the value (`1="a,b"`); hex values (`0x...`) never need
/// quoting. A key given twice is an error, not a silent overwrite.
pub fn parse_map<K, V>(text: &str) -> Result<Map<K, V>, String>
where
    K: FromStr + Ord + std::fmt::Debug,
    V: FromStr,
    K::Err: std::fmt::Display,
    V::Err: std::fmt::Display,
{
    let mut map = Map::new();
    if text == "{}" {
        return Ok(map);
    }
    for entry in split_unquoted(text, ',') {
        let Some((k, v)) = entry.split_once('=') else {
            return Err(format!(
                "`{entry}` is not `key=value` (a map is `k=v,k=v`, or `{{}}` for none)"
            ));
        };
        let key: K = k.trim().parse().map_err(|e| format!("key `{k}`: {e}"))?;
        let value: V = v.parse().map_err(|e| format!("value of `{k}`: {e}"))?;
        if map.len() == MAP_ENTRIES_MAX {
            return Err(format!("more than {MAP_ENTRIES_MAX} entries"));
        }
        if map.contains_key(&key) {
            return Err(format!("key {key:?} given twice"));
        }
        map.insert(key, value);
    }
    Ok(map)
}

/// `text` split at each `sep` outside double quotes (a backslash escapes
/// the next character inside quotes, as in the spec's literals).
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bytes;

    #[test]
    fn maps_parse_with_quoted_and_hex_values() {
        let m: Map<u64, Bytes> = parse_map(r#"1=a,2="x,y=z",3=0x00ff"#).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[&1], Bytes::from("a"));
        assert_eq!(m[&2], Bytes::from("x,y=z"));
        assert_eq!(m[&3], Bytes::from(vec![0u8, 0xff]));
        assert!(parse_map::<u64, Bytes>("{}").unwrap().is_empty());
        // An empty value is a value.
        assert_eq!(parse_map::<u64, Bytes>("7=").unwrap()[&7], Bytes::from(""));
    }

    #[test]
    fn bad_maps_are_errors() {
        for (text, want) in [
            ("", "is not `key=value`"),
            ("1=a,", "is not `key=value`"),
            ("x=a", "key `x`"),
            ("1=a,1=b", "given twice"),
            ("1=0xf", "value of `1`"),
        ] {
            let e = parse_map::<u64, Bytes>(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let many = (0..=MAP_ENTRIES_MAX)
            .map(|i| format!("{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_map::<u64, Bytes>(&many).unwrap_err().contains("more than"));
    }
}
