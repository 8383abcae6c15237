//! Durable storage: a write-ahead log of deltas plus snapshots, in one data
//! directory per node.
//!
//! Files (all integers little-endian, all checksums crc32c):
//!
//! - `node.meta` — text: format version, cluster hash, node id, protocol
//!   name, the SHA-256 of the protocol's storage schema and a checksum line.
//!   Written once (temp file, fsync, rename, fsync of the directory); a node
//!   refuses a data directory of another node, cluster or protocol, and one
//!   written under another storage schema unless the operator accepts it
//!   (then it is rewritten once, after everything decoded).
//! - `LOCK` — held with an exclusive file lock while a node runs, so two
//!   processes never write one directory.
//! - `wal-<first lsn, 20 digits>.log` — a segment of the log: a 24-byte
//!   header (magic `SMELTWAL`, version u32, first lsn u64, header crc u32)
//!   then records. A record is the deltas of exactly one handler: a 20-byte
//!   header (payload length u32, lsn u64, payload crc u32, crc of these 16
//!   bytes u32) and the payload, `postcard` of `Vec<P::Delta>`. Record lsns
//!   are consecutive from 1 across segments. One record per handler makes a
//!   handler's durable changes atomic: a crash keeps a prefix of handlers,
//!   never half of one.
//! - `snap-<lsn, 20 digits>.snap` — the whole durable state after record
//!   `lsn`: a 36-byte header (magic `SMELTSNP`, version u32, lsn u64, payload
//!   length u64, payload crc u32, header crc u32) and `postcard` of
//!   `P::Storage`. Written as `.tmp`, fsynced, renamed, directory fsynced;
//!   then a new segment starts at `lsn + 1` and older files are deleted.
//!
//! Recovery rules: the newest snapshot (or `initial_storage` without one),
//! then every record after it, in order, through `P::apply_delta`. Anything
//! that does not check out — a bad header, a checksum mismatch of a complete
//! record, a gap or repeat in lsns, a payload that does not decode or does not
//! fit the spec, a damaged snapshot — is fatal, reported with the file and
//! byte offset. The one exception is a *torn tail*: the last record of the
//! last segment may be incomplete (the file ends inside it), or its damaged
//! bytes may be explained by pages that never reached the disk (everything
//! from a 4 KiB page boundary inside it to the end of the file is zero). Such
//! a record was being written when the node died, its fsync never returned,
//! and since the node releases messages only after the fsync, nothing
//! outside the node depended on it: recovery truncates it and says so.

use crate::commit::Record;
use crate::vfs::{OsFs, Vfs, VfsFile};
use smelt_support::{Boot, Id, Protocol};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub const FORMAT_VERSION: u32 = 1;
const SEGMENT_MAGIC: [u8; 8] = *b"SMELTWAL";
const SNAPSHOT_MAGIC: [u8; 8] = *b"SMELTSNP";
pub const SEGMENT_HEADER_LEN: u64 = 24;
pub const RECORD_HEADER_LEN: u64 = 20;
pub const SNAPSHOT_HEADER_LEN: u64 = 36;
/// One handler's deltas larger than this are refused (and on recovery, a
/// header announcing more is corruption).
pub const RECORD_BYTES_MAX: u64 = 256 << 20;
const PAGE_BYTES: u64 = 4096;
const META: &str = "node.meta";

/// Where a node's durable writes go. The runtime's committer thread calls it;
/// tests substitute slow or failing implementations.
pub trait Store: Send + 'static {
    /// Appends the records (one per handler, consecutive lsns) and makes
    /// them durable before returning: write, then fsync.
    fn append(&mut self, records: &[Record]) -> io::Result<()>;
    /// Durably replaces everything up to `lsn` with `payload`, the encoded
    /// durable state after record `lsn`.
    fn snapshot(&mut self, lsn: u64, payload: &[u8]) -> io::Result<()>;
}

/// Which node a data directory belongs to, and what its bytes mean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cluster: u64,
    pub node: u64,
    pub protocol: String,
    /// SHA-256 (hex) of the protocol's storage schema
    /// (`Protocol::STORAGE_SCHEMA`): the types the log and snapshots
    /// decode into. Another schema's directory is refused, unless
    /// `accept_other_storage`.
    pub storage: String,
    /// The operator's explicit consent (`smelt run --accept-storage-schema`)
    /// to load a directory written under another storage schema, and to
    /// record this one in it once it loaded. Decoding is still checked:
    /// records that do not decode stop the node as corrupt.
    pub accept_other_storage: bool,
}

impl Identity {
    /// Node `node` of cluster `cluster` running protocol `P`.
    pub fn of<P: Protocol>(cluster: u64, node: u64) -> Identity {
        Identity {
            cluster,
            node,
            protocol: P::NAME.to_string(),
            storage: storage_schema_hash::<P>(),
            accept_other_storage: false,
        }
    }
}

/// SHA-256 (hex) of `P`'s storage schema.
pub fn storage_schema_hash<P: Protocol>() -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(P::STORAGE_SCHEMA.as_bytes()))
}

#[derive(Debug)]
pub enum RecoverError {
    /// The data is damaged: the node must not start with it.
    Corrupt {
        path: PathBuf,
        offset: u64,
        problem: String,
    },
    /// The directory belongs to someone else, is locked, or cannot be used.
    Unusable(String),
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoverError::Corrupt { path, offset, problem } => write!(
                f,
                "corrupt data directory: {} at byte {offset}: {problem}. The node refuses to start rather \
                 than act on damaged state; to rejoin as an empty node, move the data directory away and restart",
                path.display()
            ),
            RecoverError::Unusable(why) => f.write_str(why),
        }
    }
}

fn corrupt(path: &Path, offset: u64, problem: impl Into<String>) -> RecoverError {
    RecoverError::Corrupt {
        path: path.to_path_buf(),
        offset,
        problem: problem.into(),
    }
}

fn unusable(what: &str, path: &Path, e: impl fmt::Display) -> RecoverError {
    RecoverError::Unusable(format!("cannot {what} {}: {e}", path.display()))
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered<S> {
    /// `None` when the node never saved anything.
    pub storage: Option<S>,
    /// `Restart` when an earlier start stamped the directory (its identity
    /// file existed): the node may have run, and sent, before.
    pub boot: Boot,
    pub last_lsn: u64,
    pub snapshot_lsn: u64,
    pub snapshot_bytes: u64,
    pub records_replayed: u64,
    /// Bytes of records after the snapshot (drives the next snapshot).
    pub log_bytes: u64,
    /// A torn tail that was (or, read-only, would be) cut: file, offset.
    pub torn_tail: Option<(PathBuf, u64)>,
}

/// The data directory of a running node, on a file system `V` (the real
/// one, or the simulator's).
pub struct FileStore<V: Vfs = OsFs> {
    vfs: V,
    dir: PathBuf,
    _lock: V::Lock,
    segment: V::File,
    segment_first: u64,
    snapshot_lsn: u64,
    buf: Vec<u8>,
    /// A bug, switched on only by the simulator's own tests: snapshots are
    /// renamed into place without an fsync of their bytes first.
    unsafe_skip_snapshot_fsync: bool,
}

fn crc(parts: &[&[u8]]) -> u32 {
    parts.iter().fold(0, |c, p| crc32c::crc32c_append(c, p))
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[i..i + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

fn segment_name(first: u64) -> String {
    format!("wal-{first:020}.log")
}

fn snapshot_name(lsn: u64) -> String {
    format!("snap-{lsn:020}.snap")
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename, fsync
/// of the directory.
fn write_atomic<V: Vfs>(vfs: &V, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_as(vfs, dir, name, bytes, true)
}

fn write_atomic_as<V: Vfs>(vfs: &V, dir: &Path, name: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = vfs.create(&tmp)?;
    f.append(bytes)?;
    if sync {
        f.sync_data()?;
    }
    drop(f);
    vfs.rename(&tmp, &dir.join(name))?;
    vfs.sync_dir(dir)
}

pub fn encode_record(buf: &mut Vec<u8>, r: &Record) {
    let mut h = [0u8; RECORD_HEADER_LEN as usize];
    h[0..4].copy_from_slice(&(r.payload.len() as u32).to_le_bytes());
    h[4..12].copy_from_slice(&r.lsn.to_le_bytes());
    h[12..16].copy_from_slice(&crc(&[&r.payload]).to_le_bytes());
    let hc = crc(&[&h[..16]]);
    h[16..20].copy_from_slice(&hc.to_le_bytes());
    buf.extend_from_slice(&h);
    buf.extend_from_slice(&r.payload);
}

fn segment_header(first: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
    h.extend_from_slice(&SEGMENT_MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&first.to_le_bytes());
    let c = crc(&[&h]);
    h.extend_from_slice(&c.to_le_bytes());
    h
}

pub fn encode_snapshot(lsn: u64, payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(SNAPSHOT_HEADER_LEN as usize + payload.len());
    h.extend_from_slice(&SNAPSHOT_MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&lsn.to_le_bytes());
    h.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    h.extend_from_slice(&crc(&[payload]).to_le_bytes());
    let c = crc(&[&h]);
    h.extend_from_slice(&c.to_le_bytes());
    h.extend_from_slice(payload);
    h
}

fn meta_text(id: &Identity) -> String {
    let body = format!(
        "smelt-data {FORMAT_VERSION}\ncluster {:016x}\nnode {}\nprotocol {}\nstorage {}\n",
        id.cluster, id.node, id.protocol, id.storage
    );
    let c = crc(&[body.as_bytes()]);
    format!("{body}crc {c:08x}\n")
}

/// The lines of a meta body that say whose directory it is (all but the
/// storage schema).
fn owner_lines(body: &str) -> Vec<&str> {
    body.lines().filter(|l| !l.starts_with("storage ")).collect()
}

/// Checks `node.meta` against `want`. Returns whether the directory was
/// written under another storage schema that the operator accepted (the
/// meta is then rewritten once recovery succeeds).
fn check_meta(path: &Path, text: &str, want: &Identity) -> Result<bool, RecoverError> {
    let Some(cut) = text.rfind("crc ") else {
        return Err(corrupt(path, 0, "no checksum line"));
    };
    let (body, line) = text.split_at(cut);
    let stored = u32::from_str_radix(line.trim_start_matches("crc ").trim(), 16).ok();
    if stored != Some(crc(&[body.as_bytes()])) {
        return Err(corrupt(path, cut as u64, "checksum mismatch"));
    }
    let ours = meta_text(want);
    let ours_body = ours.split("crc ").next().unwrap_or_default();
    if owner_lines(body) != owner_lines(ours_body) {
        return Err(RecoverError::Unusable(format!(
            "data directory {} belongs to another node: it records\n{}but this node is\n{}",
            path.parent().unwrap_or(Path::new(".")).display(),
            body,
            ours_body
        )));
    }
    let recorded = body.lines().find_map(|l| l.strip_prefix("storage "));
    if recorded == Some(want.storage.as_str()) {
        return Ok(false);
    }
    if want.accept_other_storage {
        return Ok(true);
    }
    Err(RecoverError::Unusable(format!(
        "data directory {} was written under another storage schema: it records {}, this executable's is {}. \
         The spec's durable types changed, so its log and snapshots may not decode, or decode into something else. \
         Start on an empty data directory (the node catches up from its peers, where the protocol allows), \
         or, if the change keeps the encoding (a renamed variable or type), start once with --accept-storage-schema \
         to load it (records that do not decode still stop the node) and record the new schema",
        path.parent().unwrap_or(Path::new(".")).display(),
        recorded.unwrap_or("none (written before smelt recorded schemas)"),
        want.storage
    )))
}

/// The offset just after the last non-zero byte of the file.
fn nonzero_end<F: VfsFile>(f: &mut F, len: u64) -> io::Result<u64> {
    let mut end = len;
    let mut chunk = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        f.read_exact_at(start, &mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// A segment read for recovery.
struct Segment {
    path: PathBuf,
    first: u64,
    last: bool,
}

/// How reading one record ended.
enum Step {
    Record {
        lsn: u64,
        payload: Vec<u8>,
        bytes: u64,
    },
    End,
    /// The record at this offset is a torn tail.
    Torn,
}

fn read_record<F: VfsFile>(f: &mut F, seg: &Segment, off: u64, len: u64) -> Result<Step, RecoverError> {
    let io_err = |e: io::Error| corrupt(&seg.path, off, format!("read failed: {e}"));
    if off == len {
        return Ok(Step::End);
    }
    // Is a damaged record at `off` explained by a write that never
    // completed? Only for the last segment (see the module comment).
    let torn_or = |f: &mut F, problem: String| -> Result<Step, RecoverError> {
        if seg.last {
            let nz = nonzero_end(f, len).map_err(|e| corrupt(&seg.path, off, format!("read failed: {e}")))?;
            let page = nz.div_ceil(PAGE_BYTES) * PAGE_BYTES;
            if nz <= off || (page > off && page < len) {
                return Ok(Step::Torn);
            }
        }
        Err(corrupt(&seg.path, off, problem))
    };
    if len - off < RECORD_HEADER_LEN {
        return if seg.last {
            Ok(Step::Torn)
        } else {
            Err(corrupt(&seg.path, off, "incomplete record header"))
        };
    }
    let mut h = [0u8; RECORD_HEADER_LEN as usize];
    f.read_exact_at(off, &mut h).map_err(io_err)?;
    if crc(&[&h[..16]]) != u32_at(&h, 16) {
        return torn_or(f, "record header checksum mismatch".into());
    }
    let plen = u32_at(&h, 0) as u64;
    let lsn = u64_at(&h, 4);
    if plen > RECORD_BYTES_MAX {
        return Err(corrupt(
            &seg.path,
            off,
            format!("record length {plen} exceeds {RECORD_BYTES_MAX}"),
        ));
    }
    if off + RECORD_HEADER_LEN + plen > len {
        return if seg.last {
            Ok(Step::Torn)
        } else {
            Err(corrupt(&seg.path, off, "record extends past the end of the file"))
        };
    }
    let mut payload = vec![0u8; plen as usize];
    f.read_exact_at(off + RECORD_HEADER_LEN, &mut payload).map_err(io_err)?;
    if crc(&[&payload]) != u32_at(&h, 12) {
        return torn_or(f, format!("checksum mismatch in record {lsn}"));
    }
    Ok(Step::Record {
        lsn,
        payload,
        bytes: RECORD_HEADER_LEN + plen,
    })
}

/// The files of a data directory, by kind; numbered ones sorted by number.
#[derive(Default)]
struct Listing {
    segments: Vec<(u64, PathBuf)>,
    snapshots: Vec<(u64, PathBuf)>,
    temps: Vec<PathBuf>,
}

fn list<V: Vfs>(vfs: &V, dir: &Path) -> Result<Listing, RecoverError> {
    let Listing {
        mut segments,
        mut snapshots,
        mut temps,
    } = Listing::default();
    let entries = vfs.read_dir(dir).map_err(|e| unusable("read", dir, e))?;
    for name in entries {
        let num = |p: &str, s: &str| name.strip_prefix(p)?.strip_suffix(s)?.parse::<u64>().ok();
        if name.ends_with(".tmp") {
            temps.push(dir.join(&name));
        } else if let Some(n) = num("wal-", ".log") {
            segments.push((n, dir.join(&name)));
        } else if let Some(n) = num("snap-", ".snap") {
            snapshots.push((n, dir.join(&name)));
        }
    }
    segments.sort();
    snapshots.sort();
    Ok(Listing {
        segments,
        snapshots,
        temps,
    })
}

fn read_snapshot<P: Protocol, V: Vfs>(vfs: &V, path: &Path, name_lsn: u64) -> Result<(P::Storage, u64), RecoverError> {
    let bytes = vfs
        .read(path)
        .map_err(|e| corrupt(path, 0, format!("read failed: {e}")))?;
    let hl = SNAPSHOT_HEADER_LEN as usize;
    if bytes.len() < hl {
        return Err(corrupt(path, 0, "snapshot shorter than its header"));
    }
    if bytes[..8] != SNAPSHOT_MAGIC || crc(&[&bytes[..32]]) != u32_at(&bytes, 32) {
        return Err(corrupt(path, 0, "bad snapshot header (magic or checksum)"));
    }
    if u32_at(&bytes, 8) != FORMAT_VERSION {
        return Err(corrupt(
            path,
            8,
            format!("unsupported format version {}", u32_at(&bytes, 8)),
        ));
    }
    let lsn = u64_at(&bytes, 12);
    if lsn != name_lsn {
        return Err(corrupt(
            path,
            12,
            format!("snapshot says lsn {lsn}, its name says {name_lsn}"),
        ));
    }
    let plen = u64_at(&bytes, 20);
    if plen != (bytes.len() - hl) as u64 {
        return Err(corrupt(
            path,
            SNAPSHOT_HEADER_LEN,
            format!("payload is {} bytes, header says {plen}", bytes.len() - hl),
        ));
    }
    if crc(&[&bytes[hl..]]) != u32_at(&bytes, 28) {
        return Err(corrupt(path, SNAPSHOT_HEADER_LEN, "snapshot payload checksum mismatch"));
    }
    let storage = crate::frame::payload::<P::Storage>(&bytes[hl..])
        .map_err(|e| corrupt(path, SNAPSHOT_HEADER_LEN, format!("snapshot does not decode: {e}")))?;
    Ok((storage, bytes.len() as u64))
}

/// Recovers the durable state of node `id` from `dir`. With `write`, the
/// directory is created if needed, locked, stamped with `identity`, a torn
/// tail is truncated and the directory is opened for appending; without it
/// nothing on disk changes (for inspection).
pub fn recover<P: Protocol>(
    dir: &Path,
    identity: &Identity,
    actor: &P,
    id: Id,
    write: bool,
) -> Result<(Recovered<P::Storage>, Option<FileStore>), RecoverError> {
    recover_in(&OsFs, dir, identity, actor, id, write)
}

/// How often a long recovery logs its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What `recover_in` gives: the recovered state and, when writing, the
/// store to append to.
pub type Recovery<S, V> = Result<(Recovered<S>, Option<FileStore<V>>), RecoverError>;

/// `recover` on the file system `vfs`.
pub fn recover_in<P: Protocol, V: Vfs>(
    vfs: &V,
    dir: &Path,
    identity: &Identity,
    actor: &P,
    id: Id,
    write: bool,
) -> Recovery<P::Storage, V> {
    let lock = if write {
        vfs.create_dir_all(dir).map_err(|e| unusable("create", dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = vfs.lock(&lock_path).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => {
                RecoverError::Unusable(format!("data directory {} is in use by another process", dir.display()))
            }
            _ => unusable("create", &lock_path, e),
        })?;
        Some(lock)
    } else {
        None
    };
    let Listing {
        segments,
        snapshots,
        temps,
    } = list(vfs, dir)?;
    let meta_path = dir.join(META);
    let meta = vfs
        .read(&meta_path)
        .and_then(|b| String::from_utf8(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)));
    let mut restamp = false;
    let mut boot = Boot::First;
    match meta {
        Ok(text) => {
            restamp = check_meta(&meta_path, &text, identity)?;
            boot = Boot::Restart;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !segments.is_empty() || !snapshots.is_empty() {
                return Err(corrupt(
                    &meta_path,
                    0,
                    "missing, but the directory holds log or snapshot files",
                ));
            }
            if write {
                write_atomic(vfs, dir, META, meta_text(identity).as_bytes())
                    .map_err(|e| unusable("write", &meta_path, e))?;
            }
        }
        Err(e) => return Err(corrupt(&meta_path, 0, format!("read failed: {e}"))),
    }
    if write {
        // A temp file was never renamed, so it never counted.
        for t in temps {
            let _ = vfs.remove_file(&t);
        }
    }
    let mut storage = None;
    let mut snapshot_lsn = 0;
    let mut snapshot_bytes = 0;
    // A long recovery says how far it got, once a second (an operator
    // should not have to guess whether a node replaying a large log hangs).
    let started = vfs.now();
    let mut said = started;
    if let Some((lsn, path)) = snapshots.last() {
        let (s, bytes) = read_snapshot::<P, V>(vfs, path, *lsn)?;
        let took = vfs.now().saturating_duration_since(started);
        if took >= PROGRESS_EVERY {
            tracing::info!(snapshot = %path.display(), bytes, seconds = took.as_secs_f64(), "loaded the snapshot");
        }
        storage = Some(s);
        snapshot_lsn = *lsn;
        snapshot_bytes = bytes;
    }
    // Segments wholly covered by the snapshot are skipped: a later segment
    // starts at or before the first record after the snapshot.
    let start = segments
        .iter()
        .rposition(|(first, _)| *first <= snapshot_lsn + 1)
        .unwrap_or(0);
    let mut next: Option<u64> = None;
    let mut last_lsn = snapshot_lsn;
    let mut replayed = 0u64;
    let mut log_bytes = 0u64;
    let mut torn_tail = None;
    let mut tail_end = None;
    let n_segments = segments.len();
    for (i, (first, path)) in segments.iter().enumerate().skip(start) {
        let seg = Segment {
            path: path.clone(),
            first: *first,
            last: i + 1 == n_segments,
        };
        if i == start && seg.first > snapshot_lsn + 1 {
            return Err(corrupt(
                path,
                0,
                format!(
                    "the log starts at record {} but the state is only known up to {snapshot_lsn}",
                    seg.first
                ),
            ));
        }
        if let Some(n) = next {
            if seg.first != n {
                return Err(corrupt(
                    path,
                    0,
                    format!("segment starts at record {}, expected {n}", seg.first),
                ));
            }
        }
        let mut f = vfs
            .open(path)
            .map_err(|e| corrupt(path, 0, format!("open failed: {e}")))?;
        let len = f.size().map_err(|e| corrupt(path, 0, format!("stat failed: {e}")))?;
        let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
        let header_ok = len >= SEGMENT_HEADER_LEN
            && f.read_exact_at(0, &mut h).is_ok()
            && h[..8] == SEGMENT_MAGIC
            && crc(&[&h[..20]]) == u32_at(&h, 20);
        if !header_ok {
            let all_zero = nonzero_end(&mut f, len).map_err(|e| corrupt(path, 0, format!("read failed: {e}")))? == 0;
            if seg.last && (len < SEGMENT_HEADER_LEN || all_zero) {
                // The segment's creation was cut short: it holds nothing.
                torn_tail = Some((path.clone(), 0));
                tail_end = Some((seg.first, path.clone(), 0));
                next = Some(seg.first);
                continue;
            }
            return Err(corrupt(path, 0, "bad segment header (magic or checksum)"));
        }
        if u32_at(&h, 8) != FORMAT_VERSION {
            return Err(corrupt(
                path,
                8,
                format!("unsupported format version {}", u32_at(&h, 8)),
            ));
        }
        if u64_at(&h, 12) != seg.first {
            return Err(corrupt(
                path,
                12,
                format!(
                    "segment says it starts at {}, its name says {}",
                    u64_at(&h, 12),
                    seg.first
                ),
            ));
        }
        let mut off = SEGMENT_HEADER_LEN;
        let mut expect = seg.first;
        loop {
            match read_record(&mut f, &seg, off, len)? {
                Step::End => break,
                Step::Torn => {
                    torn_tail = Some((path.clone(), off));
                    break;
                }
                Step::Record { lsn, payload, bytes } => {
                    if lsn != expect {
                        return Err(corrupt(path, off, format!("expected record {expect}, found {lsn}")));
                    }
                    if lsn > snapshot_lsn {
                        let deltas = crate::frame::payload::<Vec<P::Delta>>(&payload)
                            .map_err(|e| corrupt(path, off, format!("record {lsn} does not decode: {e}")))?;
                        let s = match storage.as_mut() {
                            Some(s) => s,
                            None => storage.insert(actor.initial_storage(id).map_err(|e| {
                                RecoverError::Unusable(format!("the spec's initial durable state fails: {e}"))
                            })?),
                        };
                        for d in deltas {
                            P::apply_delta(s, d)
                                .map_err(|e| corrupt(path, off, format!("record {lsn} does not fit the spec: {e}")))?;
                        }
                        replayed += 1;
                        log_bytes += bytes;
                        last_lsn = lsn;
                        let now = vfs.now();
                        if now.saturating_duration_since(said) >= PROGRESS_EVERY {
                            said = now;
                            tracing::info!(
                                records = replayed,
                                log_bytes,
                                segment = %path.display(),
                                offset = off,
                                segment_bytes = len,
                                "replaying the log"
                            );
                        }
                    }
                    expect = lsn + 1;
                    off += bytes;
                }
            }
        }
        next = Some(expect);
        tail_end = Some((seg.first, path.clone(), off));
    }
    let recovered = Recovered {
        storage,
        boot,
        last_lsn,
        snapshot_lsn,
        snapshot_bytes,
        records_replayed: replayed,
        log_bytes,
        torn_tail,
    };
    let Some(lock) = lock else {
        return Ok((recovered, None));
    };
    if restamp {
        // Everything decoded under the accepted schema: record it, so the
        // next start needs no consent.
        write_atomic(vfs, dir, META, meta_text(identity).as_bytes()).map_err(|e| unusable("write", &meta_path, e))?;
        tracing::warn!(
            dir = %dir.display(),
            storage = %identity.storage,
            "loaded a data directory written under another storage schema (--accept-storage-schema); recorded this one"
        );
    }
    let segment = match tail_end {
        Some((first, path, end)) => {
            let mut f = vfs.open(&path).map_err(|e| unusable("open", &path, e))?;
            if end < SEGMENT_HEADER_LEN {
                f.set_len(0).map_err(|e| unusable("truncate", &path, e))?;
                f.append(&segment_header(first))
                    .map_err(|e| unusable("write", &path, e))?;
            } else {
                f.set_len(end).map_err(|e| unusable("truncate", &path, e))?;
            }
            f.sync_data().map_err(|e| unusable("sync", &path, e))?;
            (f, first)
        }
        None => {
            let first = last_lsn + 1;
            (
                new_segment(vfs, dir, first).map_err(|e| unusable("create a log segment in", dir, e))?,
                first,
            )
        }
    };
    let (segment, segment_first) = segment;
    let store = FileStore {
        vfs: vfs.clone(),
        dir: dir.to_path_buf(),
        _lock: lock,
        segment,
        segment_first,
        snapshot_lsn,
        buf: Vec::new(),
        unsafe_skip_snapshot_fsync: false,
    };
    Ok((recovered, Some(store)))
}

fn new_segment<V: Vfs>(vfs: &V, dir: &Path, first: u64) -> io::Result<V::File> {
    let path = dir.join(segment_name(first));
    let mut f = vfs.create(&path)?;
    f.append(&segment_header(first))?;
    f.sync_data()?;
    vfs.sync_dir(dir)?;
    Ok(f)
}

impl<V: Vfs> FileStore<V> {
    /// Switches on a bug (snapshots renamed into place without an fsync of
    /// their bytes), for the simulator's own tests only.
    pub fn unsafe_skip_snapshot_fsync(&mut self) {
        self.unsafe_skip_snapshot_fsync = true;
    }
}

impl<V: Vfs> Store for FileStore<V> {
    fn append(&mut self, records: &[Record]) -> io::Result<()> {
        self.buf.clear();
        for r in records {
            encode_record(&mut self.buf, r);
        }
        self.segment.append(&self.buf)?;
        // fdatasync also persists the file size, which appends change.
        self.segment.sync_data()
    }

    fn snapshot(&mut self, lsn: u64, payload: &[u8]) -> io::Result<()> {
        if lsn <= self.snapshot_lsn {
            return Ok(());
        }
        write_atomic_as(
            &self.vfs,
            &self.dir,
            &snapshot_name(lsn),
            &encode_snapshot(lsn, payload),
            !self.unsafe_skip_snapshot_fsync,
        )?;
        self.snapshot_lsn = lsn;
        if self.segment_first != lsn + 1 {
            self.segment = new_segment(&self.vfs, &self.dir, lsn + 1)?;
            self.segment_first = lsn + 1;
        }
        // Everything older is now covered by the durable snapshot.
        let Listing {
            segments, snapshots, ..
        } = list(&self.vfs, &self.dir).map_err(|e| io::Error::other(e.to_string()))?;
        for (first, path) in segments {
            if first < self.segment_first {
                self.vfs.remove_file(&path)?;
            }
        }
        for (l, path) in snapshots {
            if l < lsn {
                self.vfs.remove_file(&path)?;
            }
        }
        self.vfs.sync_dir(&self.dir)
    }
}
