//! The BFS frontier, encoded: a level of the search is a list of chunks of
//! serialized states, each chunk compressed, kept in RAM while the memory
//! budget allows and appended to a file on disk once it does not.
//!
//! Why encoded and not live states: a live global state costs its
//! allocations (a `Vec` of nodes, the network, a history, each behind its
//! own header and allocator slack), about 1–5 KiB for raft.sm; the frontier
//! was nearly all of a large search's memory. Encoded, a state costs only
//! what differs from the state before it in the chunk — successors of one
//! state are written one after another and share all but one node — and
//! compression squeezes out the rest (a network mostly equal to the one
//! before it). Decoding restores the sharing: a node equal to the previous
//! state's is the same `Arc`.
//!
//! A chunk is a unit of work (threads take whole chunks) and of I/O (one
//! sequential write, one read). Its header — state count and a CRC-32C of
//! its bytes — stays in RAM, so a chunk read back from disk that does not
//! match is an error, never a wrong state.

use crate::history::History;
use crate::net::Net;
use crate::system::{Hashed, Node, SysState};
use crate::visited::Fp;
use smelt_support::Protocol;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Uncompressed bytes after which an encoder's chunk is closed.
pub const CHUNK_BYTES: usize = 256 << 10;
/// No chunk is larger: the last state may take it past `CHUNK_BYTES`, but
/// not by this much (a bigger one is refused when read back).
const CHUNK_BYTES_MAX: usize = 1 << 30;
/// At most this many states per chunk (a decoder trusts nothing larger).
const CHUNK_STATES_MAX: u32 = 1 << 22;

type Hist<P> = History<<P as Protocol>::Request, <P as Protocol>::Reply>;

/// Choice keys are `&'static str`s of the generated code; a chunk stores an
/// index into this list, which only grows (a spec has a few keys).
#[derive(Default)]
pub struct Keys(RwLock<Vec<&'static str>>);

impl Keys {
    fn index(&self, key: &'static str) -> u32 {
        if let Some(i) = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .position(|&k| k == key)
        {
            return i as u32;
        }
        let mut keys = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = keys.iter().position(|&k| k == key) {
            return i as u32;
        }
        keys.push(key);
        (keys.len() - 1) as u32
    }

    fn key(&self, i: u32) -> Result<&'static str, String> {
        let keys = self.0.read().unwrap_or_else(|e| e.into_inner());
        keys.get(i as usize)
            .copied()
            .ok_or_else(|| format!("choice key {i} unknown"))
    }
}

const SAME_STATE: u8 = 1;
const SAME_STORAGE: u8 = 2;
const SAME_TIMERS: u8 = 4;
const SAME_CHOICES: u8 = 8;

/// Writes states into a chunk, each relative to the one before it: a node
/// state, storage, timer list, choice list or history equal to the previous
/// state's is a bit, and the network is a diff against the previous one.
pub struct Encoder<P: Protocol> {
    raw: Vec<u8>,
    states: u32,
    /// The state written last (owned, so a pointer found equal to one of
    /// its parts is never a reused allocation).
    prev: Option<SysState<P>>,
    /// Choices with their keys as indexes (reused between states).
    choices: Vec<(u32, Vec<P::Choice>)>,
}

impl<P: Protocol> Default for Encoder<P> {
    fn default() -> Self {
        Encoder {
            raw: Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 8),
            states: 0,
            prev: None,
            choices: Vec::new(),
        }
    }
}

fn put<T: serde::Serialize + ?Sized>(raw: &mut Vec<u8>, v: &T) {
    // Serializing into a `Vec` fails only on a type serde cannot express,
    // which the `Protocol` bounds rule out.
    let out = postcard::to_extend(v, std::mem::take(raw)).expect("a state serializes");
    *raw = out;
}

/// Writes `cur` as edits of `prev` (both sorted): runs of (elements of
/// `prev` skipped, elements of `prev` kept, new elements). Successive states
/// of a chunk differ in a message or two, and comparing is cheaper than
/// serializing.
fn put_diff<T: Ord + serde::Serialize>(raw: &mut Vec<u8>, prev: &[T], cur: &[T]) {
    put(raw, &(cur.len() as u32));
    let (mut i, mut j) = (0, 0);
    while j < cur.len() {
        let skip_from = i;
        while i < prev.len() && prev[i] < cur[j] {
            i += 1;
        }
        let skip = i - skip_from;
        let copy_from = i;
        while i < prev.len() && j < cur.len() && prev[i] == cur[j] {
            i += 1;
            j += 1;
        }
        let copy = i - copy_from;
        let new_from = j;
        while j < cur.len() && (i >= prev.len() || cur[j] < prev[i]) {
            j += 1;
        }
        put(raw, &(skip as u32, copy as u32, (j - new_from) as u32));
        for x in &cur[new_from..j] {
            put(raw, x);
        }
    }
}

fn put_net<M: Ord + Clone + serde::Serialize>(raw: &mut Vec<u8>, prev: Option<&Net<M>>, cur: &Net<M>) {
    match (prev, cur) {
        (Some(Net::Duplicating(p)), Net::Duplicating(c)) => put_diff(raw, p, c),
        (Some(Net::NonDuplicating(p)), Net::NonDuplicating(c)) => put_diff(raw, p, c),
        (Some(Net::Ordered(p)), Net::Ordered(c)) => put_diff(raw, p, c),
        (Some(Net::Owed(p)), Net::Owed(c)) => put_diff(raw, p, c),
        (_, Net::Duplicating(c)) => put_diff(raw, &[], c),
        (_, Net::NonDuplicating(c)) => put_diff(raw, &[], c),
        (_, Net::Ordered(c)) => put_diff(raw, &[], c),
        (_, Net::Owed(c)) => put_diff(raw, &[], c),
    }
}

impl<P: Protocol> Encoder<P> {
    pub fn is_empty(&self) -> bool {
        self.states == 0
    }

    /// Whether the chunk is due to be closed.
    pub fn full(&self) -> bool {
        self.raw.len() >= CHUNK_BYTES || self.states >= CHUNK_STATES_MAX
    }

    pub fn push(&mut self, s: SysState<P>, fp: Fp, keys: &Keys) {
        let raw = &mut self.raw;
        let prev = self.prev.as_ref().filter(|p| p.nodes.len() == s.nodes.len());
        raw.extend_from_slice(&fp.to_le_bytes());
        put(
            raw,
            &(s.crashed, s.stopped, s.drops_used, s.crashes_used, s.races_used, s.calm),
        );
        if prev.is_some_and(|p| Arc::ptr_eq(&p.history, &s.history)) {
            raw.push(1);
        } else {
            raw.push(0);
            put(raw, &*s.history);
        }
        put(raw, &(s.nodes.len() as u32));
        for (i, n) in s.nodes.iter().enumerate() {
            let p = prev.map(|p| &p.nodes[i]);
            let mut flags = 0;
            if p.is_some_and(|p| Arc::ptr_eq(&p.state, &n.state) || *p.state == *n.state) {
                flags |= SAME_STATE;
            }
            if p.is_some_and(|p| match (&p.storage, &n.storage) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }) {
                flags |= SAME_STORAGE;
            }
            if p.is_some_and(|p| p.timers == n.timers) {
                flags |= SAME_TIMERS;
            }
            if p.is_some_and(|p| p.choices == n.choices) {
                flags |= SAME_CHOICES;
            }
            raw.push(flags);
            if flags & SAME_STATE == 0 {
                raw.extend_from_slice(&n.state.hash_value().to_le_bytes());
                put(raw, &**n.state);
            }
            if flags & SAME_STORAGE == 0 {
                put(raw, &n.storage.as_deref());
            }
            if flags & SAME_TIMERS == 0 {
                put(raw, &n.timers);
            }
            if flags & SAME_CHOICES == 0 {
                self.choices.clear();
                self.choices
                    .extend(n.choices.iter().map(|(k, opts)| (keys.index(k), opts.clone())));
                put(raw, &self.choices);
            }
        }
        put_net(raw, prev.map(|p| &p.net), &s.net);
        self.states += 1;
        self.prev = Some(s);
    }

    /// Closes the chunk: its compressed bytes, ready for a `Sink`.
    pub fn finish(&mut self) -> Sealed {
        let bytes = lz4_flex::block::compress_prepend_size(&self.raw);
        let sealed = Sealed {
            states: self.states,
            crc: crc32c::crc32c(&bytes),
            bytes,
        };
        self.raw.clear();
        self.states = 0;
        self.prev = None;
        sealed
    }
}

/// A closed chunk in RAM, not yet placed.
pub struct Sealed {
    states: u32,
    crc: u32,
    bytes: Vec<u8>,
}

impl Sealed {
    /// Compressed bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states == 0
    }

    /// Checks the chunk against its checksum and decompresses it: its raw
    /// bytes (for a `Decoder`) and state count.
    pub fn open(self) -> Result<(Vec<u8>, u32), String> {
        if crc32c::crc32c(&self.bytes) != self.crc {
            return Err("a frontier chunk read back does not match its checksum".into());
        }
        // The size prefix is checked before it sizes an allocation.
        let size = match self.bytes.first_chunk::<4>().map(|b| u32::from_le_bytes(*b) as usize) {
            Some(n) if n <= CHUNK_BYTES_MAX => n,
            _ => return Err("a frontier chunk has an impossible size".into()),
        };
        let raw = lz4_flex::block::decompress_size_prepended(&self.bytes)
            .map_err(|e| format!("a frontier chunk does not decompress: {e}"))?;
        if raw.len() != size {
            return Err("a frontier chunk decompresses short".into());
        }
        Ok((raw, self.states))
    }
}

fn take<T: serde::de::DeserializeOwned>(raw: &mut &[u8]) -> Result<T, String> {
    let (v, rest) = postcard::take_from_bytes(raw).map_err(|e| format!("undecodable state: {e}"))?;
    *raw = rest;
    Ok(v)
}

fn take_u64(raw: &mut &[u8]) -> Result<u64, String> {
    let Some((x, rest)) = raw.split_first_chunk::<8>() else {
        return Err("a chunk ends inside a state".into());
    };
    *raw = rest;
    Ok(u64::from_le_bytes(*x))
}

/// Reads what `put_diff` wrote, against the same `prev`.
fn take_diff<T: Clone + serde::de::DeserializeOwned>(raw: &mut &[u8], prev: &[T]) -> Result<Vec<T>, String> {
    let len: u32 = take(raw)?;
    if len > 1 << 24 {
        return Err(format!("{len} messages in flight"));
    }
    let mut out = Vec::with_capacity(len as usize);
    let mut i = 0usize;
    while out.len() < len as usize {
        let (skip, copy, new): (u32, u32, u32) = take(raw)?;
        i += skip as usize;
        let kept = prev
            .get(i..i + copy as usize)
            .ok_or("a network diff refers past the previous state's")?;
        out.extend_from_slice(kept);
        i += copy as usize;
        if out.len() + new as usize > len as usize || (skip, copy, new) == (0, 0, 0) {
            return Err("a network diff does not add up".into());
        }
        for _ in 0..new {
            out.push(take(raw)?);
        }
    }
    Ok(out)
}

fn take_net<M: Ord + Clone + serde::de::DeserializeOwned>(
    raw: &mut &[u8],
    prev: Option<&Net<M>>,
    kind: &Net<M>,
) -> Result<Net<M>, String> {
    Ok(match (prev, kind) {
        (Some(Net::Duplicating(p)), Net::Duplicating(_)) => Net::Duplicating(take_diff(raw, p)?),
        (Some(Net::NonDuplicating(p)), Net::NonDuplicating(_)) => Net::NonDuplicating(take_diff(raw, p)?),
        (Some(Net::Ordered(p)), Net::Ordered(_)) => Net::Ordered(take_diff(raw, p)?),
        (Some(Net::Owed(p)), Net::Owed(_)) => Net::Owed(take_diff(raw, p)?),
        (_, Net::Duplicating(_)) => Net::Duplicating(take_diff(raw, &[])?),
        (_, Net::NonDuplicating(_)) => Net::NonDuplicating(take_diff(raw, &[])?),
        (_, Net::Ordered(_)) => Net::Ordered(take_diff(raw, &[])?),
        (_, Net::Owed(_)) => Net::Owed(take_diff(raw, &[])?),
    })
}

/// Reads back the states of one chunk, in the order they were written.
/// It lends each state (`next_state`): the next one is built from it.
pub struct Decoder<'a, P: Protocol> {
    raw: &'a [u8],
    left: u32,
    cur: Option<SysState<P>>,
    /// An empty network of the check's kind (which variant to decode).
    kind: Net<P::Message>,
    keys: &'a Keys,
}

impl<'a, P: Protocol> Decoder<'a, P> {
    pub fn new(raw: &'a [u8], states: u32, kind: Net<P::Message>, keys: &'a Keys) -> Self {
        Decoder {
            raw,
            left: states,
            cur: None,
            kind,
            keys,
        }
    }

    /// The next state, or `None` after the last one.
    pub fn next_state(&mut self) -> Result<Option<(&SysState<P>, Fp)>, String> {
        if self.left == 0 {
            if !self.raw.is_empty() {
                return Err("a chunk has bytes after its last state".into());
            }
            return Ok(None);
        }
        self.left -= 1;
        match self.state() {
            Ok(fp) => Ok(self.cur.as_ref().map(|s| (s, fp))),
            Err(e) => {
                self.left = 0;
                self.raw = &[];
                self.cur = None;
                Err(e)
            }
        }
    }

    fn state(&mut self) -> Result<Fp, String> {
        let raw = &mut self.raw;
        let fp = take_u64(raw)?;
        let (crashed, stopped, drops_used, crashes_used, races_used, calm): (u64, u64, u8, u8, u8, bool) = take(raw)?;
        let prev = self.cur.take();
        let history = match take::<u8>(raw)? {
            1 => prev
                .as_ref()
                .ok_or("a history refers to none before it")?
                .history
                .clone(),
            _ => Arc::new(take::<Hist<P>>(raw)?),
        };
        let n: u32 = take(raw)?;
        if n > 64 {
            return Err(format!("{n} nodes in a state"));
        }
        let prev = prev.filter(|p| p.nodes.len() == n as usize);
        let mut old = prev.as_ref().map(|p| p.nodes.iter());
        let mut nodes = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let flags: u8 = take(raw)?;
            let p = old.as_mut().and_then(|it| it.next());
            if flags != 0 && p.is_none() {
                return Err("a node refers to none before it".into());
            }
            let state = match p {
                Some(p) if flags & SAME_STATE != 0 => p.state.clone(),
                _ => {
                    let hash = take_u64(raw)?;
                    Arc::new(Hashed::with_hash(take::<P::NodeState>(raw)?, hash))
                }
            };
            let storage = match p {
                Some(p) if flags & SAME_STORAGE != 0 => p.storage.clone(),
                _ => take::<Option<P::Durable>>(raw)?.map(Arc::new),
            };
            let timers = match p {
                Some(p) if flags & SAME_TIMERS != 0 => p.timers.clone(),
                _ => take(raw)?,
            };
            let choices = match p {
                Some(p) if flags & SAME_CHOICES != 0 => p.choices.clone(),
                _ => take::<Vec<(u32, Vec<P::Choice>)>>(raw)?
                    .into_iter()
                    .map(|(k, opts)| Ok((self.keys.key(k)?, opts)))
                    .collect::<Result<_, String>>()?,
            };
            nodes.push(Node {
                state,
                timers,
                choices,
                storage,
            });
        }
        let net = take_net(raw, prev.as_ref().map(|p| &p.net), &self.kind)?;
        self.cur = Some(SysState {
            nodes,
            net,
            crashed,
            stopped,
            history,
            drops_used,
            crashes_used,
            races_used,
            calm,
        });
        Ok(fp)
    }
}

/// Where a chunk's bytes are.
enum At {
    Ram(Vec<u8>),
    Disk { offset: u64, len: usize },
}

/// One chunk of a level.
pub struct Chunk {
    pub states: u32,
    crc: u32,
    at: At,
}

/// The memory and disk a frontier uses, shared by the levels of a search.
pub struct Store {
    dir: PathBuf,
    /// Compressed bytes of chunks held in RAM (every level alive).
    pub ram_bytes: AtomicU64,
    pub disk_bytes: AtomicU64,
    pub disk_bytes_max: AtomicU64,
    pub chunks_spilled: AtomicU64,
    pub keys: Keys,
}

impl Store {
    /// Where spill files go.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn new(dir: PathBuf) -> Store {
        Store {
            dir,
            ram_bytes: AtomicU64::new(0),
            disk_bytes: AtomicU64::new(0),
            disk_bytes_max: AtomicU64::new(0),
            chunks_spilled: AtomicU64::new(0),
            keys: Keys::default(),
        }
    }
}

/// A level being written: chunks arrive from every thread.
pub struct Level {
    chunks: Vec<Mutex<Option<Chunk>>>,
    /// This level's spill file (created at its first spilled chunk; an
    /// unnamed temporary file, so it is gone when dropped or on a crash).
    file: Mutex<Option<(File, u64)>>,
    pub states: u64,
}

/// A level under construction.
#[derive(Default)]
pub struct Sink {
    chunks: Mutex<Vec<Chunk>>,
    file: Mutex<Option<(File, u64)>>,
}

impl Sink {
    /// Places a closed chunk: in RAM if `ram_ok`, else at the end of this
    /// level's file.
    pub fn push(&self, store: &Store, c: Sealed, ram_ok: bool) -> Result<(), String> {
        if c.states == 0 {
            return Ok(());
        }
        let at = if ram_ok {
            store.ram_bytes.fetch_add(c.bytes.len() as u64, Ordering::Relaxed);
            At::Ram(c.bytes)
        } else {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            if file.is_none() {
                let f = tempfile::tempfile_in(&store.dir)
                    .map_err(|e| format!("cannot create a frontier file in {}: {e}", store.dir.display()))?;
                *file = Some((f, 0));
            }
            let (f, end) = file.as_mut().expect("created above");
            let offset = *end;
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.write_all(&c.bytes))
                .map_err(|e| format!("cannot write the frontier to {}: {e}", store.dir.display()))?;
            *end += c.bytes.len() as u64;
            let used = store.disk_bytes.fetch_add(c.bytes.len() as u64, Ordering::Relaxed) + c.bytes.len() as u64;
            store.disk_bytes_max.fetch_max(used, Ordering::Relaxed);
            store.chunks_spilled.fetch_add(1, Ordering::Relaxed);
            At::Disk {
                offset,
                len: c.bytes.len(),
            }
        };
        self.chunks.lock().unwrap_or_else(|e| e.into_inner()).push(Chunk {
            states: c.states,
            crc: c.crc,
            at,
        });
        Ok(())
    }

    pub fn finish(self) -> Level {
        let chunks = self.chunks.into_inner().unwrap_or_else(|e| e.into_inner());
        Level {
            states: chunks.iter().map(|c| c.states as u64).sum(),
            chunks: chunks.into_iter().map(|c| Mutex::new(Some(c))).collect(),
            file: self.file,
        }
    }
}

impl Level {
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Takes chunk `i` out of the level (each is taken once) and returns
    /// its uncompressed bytes and state count, freeing its RAM.
    pub fn take(&self, i: usize, store: &Store) -> Result<(Vec<u8>, u32), String> {
        let chunk = self.chunks[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or("a frontier chunk was taken twice")?;
        let bytes = match chunk.at {
            At::Ram(b) => {
                store.ram_bytes.fetch_sub(b.len() as u64, Ordering::Relaxed);
                b
            }
            At::Disk { offset, len } => {
                let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
                let (f, _) = file.as_mut().ok_or("a spilled chunk without a file")?;
                let mut b = vec![0; len];
                f.seek(SeekFrom::Start(offset))
                    .and_then(|_| f.read_exact(&mut b))
                    .map_err(|e| format!("cannot read the frontier back: {e}"))?;
                store.disk_bytes.fetch_sub(len as u64, Ordering::Relaxed);
                b
            }
        };
        Sealed {
            states: chunk.states,
            crc: chunk.crc,
            bytes,
        }
        .open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(raw: &[u8], states: u32) -> Sealed {
        let bytes = lz4_flex::block::compress_prepend_size(raw);
        Sealed {
            states,
            crc: crc32c::crc32c(&bytes),
            bytes,
        }
    }

    #[test]
    fn a_chunk_opens_to_what_was_sealed() {
        let raw: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        assert_eq!(sealed(&raw, 7).open(), Ok((raw, 7)));
    }

    #[test]
    fn a_corrupted_chunk_is_refused_not_loaded() {
        let raw = vec![42u8; 4096];
        let good = sealed(&raw, 1);
        for at in [0, 1, 4, good.bytes.len() / 2, good.bytes.len() - 1] {
            let mut bad = sealed(&raw, 1);
            bad.bytes[at] ^= 0x10;
            let e = bad.open().unwrap_err();
            assert!(e.contains("checksum"), "{e}");
        }
        // A size prefix that checks out but could not be real.
        let mut huge = sealed(&raw, 1);
        huge.bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        huge.crc = crc32c::crc32c(&huge.bytes);
        assert!(huge.open().unwrap_err().contains("impossible size"));
        // A truncated chunk whose checksum was recomputed: refused by the
        // decompressor, without a panic.
        let mut short = sealed(&raw, 1);
        short.bytes.truncate(6);
        short.crc = crc32c::crc32c(&short.bytes);
        assert!(short.open().is_err());
    }

    #[test]
    fn spilled_chunks_come_back_from_disk() {
        let store = Store::new(std::env::temp_dir());
        let sink = Sink::default();
        let raws: Vec<Vec<u8>> = (0..5u8).map(|k| vec![k; 1000 + k as usize]).collect();
        for (k, raw) in raws.iter().enumerate() {
            // Alternate RAM and disk.
            sink.push(&store, sealed(raw, k as u32 + 1), k % 2 == 0).unwrap();
        }
        assert_eq!(store.chunks_spilled.load(Ordering::Relaxed), 2);
        assert!(store.disk_bytes_max.load(Ordering::Relaxed) > 0);
        let level = sink.finish();
        assert_eq!(level.states, 1 + 2 + 3 + 4 + 5);
        for (k, raw) in raws.iter().enumerate() {
            assert_eq!(level.take(k, &store), Ok((raw.clone(), k as u32 + 1)));
        }
        assert!(level.take(0, &store).is_err(), "a chunk is taken once");
        assert_eq!(store.ram_bytes.load(Ordering::Relaxed), 0);
        assert_eq!(store.disk_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_diff_rebuilds_the_list() {
        let cases: [(&[u32], &[u32]); 6] = [
            (&[], &[1, 2, 3]),
            (&[1, 2, 3], &[]),
            (&[1, 2, 3], &[1, 2, 3]),
            (&[1, 3, 5, 7], &[0, 3, 4, 7, 9]),
            (&[2, 4], &[1, 2, 3, 4, 5]),
            (&[1, 2, 3, 4, 5], &[3]),
        ];
        for (prev, cur) in cases {
            let mut raw = Vec::new();
            put_diff(&mut raw, prev, cur);
            let mut r = &raw[..];
            assert_eq!(take_diff::<u32>(&mut r, prev).unwrap(), cur);
            assert!(r.is_empty());
            // Against the wrong previous list it fails or differs, never panics.
            let mut r = &raw[..];
            let _ = take_diff::<u32>(&mut r, &[]);
        }
    }
}
