//! The data directory: recovery, torn tails, and damage that must stop a
//! node from starting.

mod common;

use common::journal::{Delta, Journal, ServerDelta, Storage};
use common::*;
use smelt_runtime::commit::Record;
use smelt_runtime::storage::{self, FileStore, Identity, RecoverError, Recovered, Store};
use smelt_support::{Boot, Id, Layout, Protocol};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[test]
fn node_entry() {
    common::node_entry();
}

fn identity() -> Identity {
    Identity::of::<Journal>(7, 0)
}

fn open(dir: &Path, write: bool) -> Result<(Recovered<Storage>, Option<FileStore>), RecoverError> {
    let actor = Journal::server(Id::from(0), &Layout::new(&[1], 0)).expect("server");
    storage::recover::<Journal>(dir, &identity(), &actor, Id::from(0), write)
}

fn record(lsn: u64) -> Record {
    let deltas = vec![
        Delta::Server(ServerDelta::ItemsPush(lsn)),
        Delta::Server(ServerDelta::Sum(lsn * (lsn + 1) / 2)),
    ];
    Record {
        lsn,
        payload: postcard::to_stdvec(&deltas).expect("encode"),
    }
}

fn items(r: &Recovered<Storage>) -> Vec<u64> {
    match &r.storage {
        Some(Storage::Server(s)) => s.items.clone(),
        None => Vec::new(),
    }
}

/// A data directory with records 1..=n, one append (one fsync) each; with
/// `snapshot_at`, a snapshot after that record.
fn build(name: &str, n: u64, snapshot_at: Option<u64>) -> PathBuf {
    let dir = scratch(name).join("data");
    let (r, store) = open(&dir, true).expect("fresh");
    assert!(r.storage.is_none(), "a fresh directory has no state");
    let mut store = store.expect("store");
    for lsn in 1..=n {
        store.append(&[record(lsn)]).expect("append");
        if snapshot_at == Some(lsn) {
            let s = Storage::Server(common::journal::ServerStorage {
                items: (1..=lsn).collect(),
                sum: lsn * (lsn + 1) / 2,
            });
            store
                .snapshot(lsn, &postcard::to_stdvec(&s).expect("encode"))
                .expect("snapshot");
        }
    }
    dir
}

/// `restarted` in a spec's `init` is true on every start after the first,
/// even when nothing was saved: the stamp the first start wrote (synced
/// before the node runs) is what says the node may have sent something.
/// A read-only open (inspection) reports it too.
#[test]
fn boot_is_first_only_on_a_fresh_directory() {
    let dir = scratch("boot").join("data");
    let (r, store) = open(&dir, true).expect("fresh");
    assert_eq!(r.boot, Boot::First);
    assert!(r.storage.is_none());
    drop(store);
    let (r, store) = open(&dir, true).expect("again, nothing saved");
    assert_eq!(r.boot, Boot::Restart, "the first start stamped the directory");
    assert!(r.storage.is_none(), "a restart may find nothing saved");
    drop(store);
    let dir = build("boot_records", 2, None);
    let (r, _) = open(&dir, false).expect("records");
    assert_eq!((r.boot, items(&r)), (Boot::Restart, vec![1, 2]));
}

fn file_with(dir: &Path, prefix: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .collect();
    files.sort();
    files.pop().expect("file")
}

fn corrupt_at(e: RecoverError) -> (PathBuf, u64, String) {
    let text = e.to_string();
    match e {
        RecoverError::Corrupt { path, offset, .. } => (path, offset, text),
        other => panic!("expected corruption, got {other}"),
    }
}

#[test]
fn recovers_log_and_snapshot() {
    let _no_spawn = no_spawn();
    let dir = build("plain", 20, None);
    let (r, _) = open(&dir, false).expect("recover");
    assert_eq!(items(&r), (1..=20).collect::<Vec<_>>());
    assert_eq!((r.last_lsn, r.records_replayed, r.torn_tail.is_none()), (20, 20, true));

    let dir = build("snap", 20, Some(12));
    let (r, store) = open(&dir, true).expect("recover");
    assert_eq!(items(&r), (1..=20).collect::<Vec<_>>());
    assert_eq!((r.snapshot_lsn, r.records_replayed), (12, 8));
    // Older segments are gone; appending continues after a restart.
    let segments = std::fs::read_dir(&dir)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("wal-"))
        })
        .count();
    assert_eq!(segments, 1);
    let mut store = store.expect("store");
    store.append(&[record(21)]).expect("append");
    drop(store);
    let (r, _) = open(&dir, false).expect("recover");
    assert_eq!(r.last_lsn, 21);
    assert_eq!(common::journal::Journal::NAME, "Journal");
}

#[test]
fn torn_final_record_is_truncated_and_reported() {
    let _no_spawn = no_spawn();
    let dir = build("torn", 5, None);
    let wal = file_with(&dir, "wal-");
    let len = std::fs::metadata(&wal).expect("stat").len();
    let rec = storage::RECORD_HEADER_LEN + record(5).payload.len() as u64;
    for cut in 1..rec {
        let d = build(&format!("torn-{cut}"), 5, None);
        let w = file_with(&d, "wal-");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&w)
            .and_then(|f| f.set_len(len - cut))
            .expect("truncate");
        let (r, _) = open(&d, false).expect("a torn tail is not corruption");
        assert_eq!(items(&r), vec![1, 2, 3, 4], "cut {cut}");
        assert_eq!(r.torn_tail, Some((w.clone(), len - rec)));
        let (r, _) = open(&d, true).expect("truncates");
        assert!(r.torn_tail.is_some());
        let (r, _) = open(&d, false).expect("clean now");
        assert_eq!((r.torn_tail, r.last_lsn), (None, 4));
        let _ = std::fs::remove_dir_all(d.parent().unwrap_or(&d));
    }
    // Pages that never reached the disk read as zeros: a zero-filled tail
    // after the last complete record is torn too.
    let f = std::fs::OpenOptions::new().append(true).open(&wal).expect("open");
    std::io::Write::write_all(&mut &f, &[0u8; 9000]).expect("extend");
    let (r, _) = open(&dir, false).expect("zero tail");
    assert_eq!(r.torn_tail, Some((wal.clone(), len)));
    assert_eq!(items(&r).len(), 5);
}

/// Every single-byte change anywhere in the log or snapshot is refused
/// with the file and offset; nothing is silently loaded.
#[test]
fn every_flipped_byte_is_refused() {
    let _no_spawn = no_spawn();
    for snapshot in [None, Some(3)] {
        let dir = build("flip", 6, snapshot);
        let mut files = vec![file_with(&dir, "wal-")];
        if snapshot.is_some() {
            files.push(file_with(&dir, "snap-"));
        }
        for f in files {
            let original = std::fs::read(&f).expect("read");
            for i in 0..original.len() {
                let mut b = original.clone();
                b[i] ^= 0x5a;
                std::fs::write(&f, &b).expect("write");
                match open(&dir, false) {
                    Err(e) => {
                        let (path, offset, text) = corrupt_at(e);
                        assert_eq!(path, f, "byte {i}");
                        assert!(offset <= i as u64, "byte {i} reported at {offset}");
                        assert!(text.contains("at byte") && text.contains("refuses to start"), "{text}");
                    }
                    Ok((r, _)) => panic!("flip at {} byte {i} loaded {:?}", f.display(), items(&r)),
                }
            }
            std::fs::write(&f, &original).expect("restore");
        }
    }
}

#[test]
fn damage_outside_the_tail_is_refused() {
    let _no_spawn = no_spawn();
    // A record in the middle with a bad checksum.
    let dir = build("mid", 6, None);
    let wal = file_with(&dir, "wal-");
    let mut b = std::fs::read(&wal).expect("read");
    let rec = storage::RECORD_HEADER_LEN as usize + record(1).payload.len();
    let third = storage::SEGMENT_HEADER_LEN as usize + 2 * rec;
    b[third + storage::RECORD_HEADER_LEN as usize] ^= 1;
    std::fs::write(&wal, &b).expect("write");
    let (path, offset, text) = corrupt_at(open(&dir, true).err().expect("refused"));
    assert_eq!((path, offset), (wal.clone(), third as u64));
    assert!(text.contains("checksum mismatch in record 3"), "{text}");

    // A truncated snapshot.
    let dir = build("snaptrunc", 6, Some(4));
    let snap = file_with(&dir, "snap-");
    let len = std::fs::metadata(&snap).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snap)
        .and_then(|f| f.set_len(len - 1))
        .expect("truncate");
    let (path, _, _) = corrupt_at(open(&dir, true).err().expect("refused"));
    assert_eq!(path, snap);

    // A deleted snapshot leaves a gap before the log.
    let dir = build("snapgone", 6, Some(4));
    std::fs::remove_file(file_with(&dir, "snap-")).expect("rm");
    let (_, _, text) = corrupt_at(open(&dir, true).err().expect("refused"));
    assert!(text.contains("the log starts at record 5"), "{text}");

    // A deleted node.meta next to a log.
    let dir = build("nometa", 2, None);
    std::fs::remove_file(dir.join("node.meta")).expect("rm");
    let (path, _, _) = corrupt_at(open(&dir, true).err().expect("refused"));
    assert!(path.ends_with("node.meta"));
}

#[test]
fn another_nodes_directory_is_refused() {
    let _no_spawn = no_spawn();
    let dir = build("identity", 2, None);
    let actor = Journal::server(Id::from(0), &Layout::new(&[1], 0)).expect("server");
    let other = Identity {
        cluster: 8,
        ..identity()
    };
    match storage::recover::<Journal>(&dir, &other, &actor, Id::from(0), true) {
        Err(RecoverError::Unusable(text)) => assert!(text.contains("belongs to another node"), "{text}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("loaded another cluster's data"),
    }
    // Two processes never share a directory.
    let (_, held) = open(&dir, true).expect("open");
    assert!(matches!(open(&dir, true), Err(RecoverError::Unusable(t)) if t.contains("in use")));
    drop(held);
}

/// The node process itself refuses a damaged directory (exit code 3, the
/// file and offset in its message), and starts empty once it is wiped.
/// A directory written under another storage schema (the spec's durable
/// types changed) is refused, naming both schemas; with the operator's
/// consent it loads — every record still decoded and checked — and the new
/// schema is recorded, so the old executable is refused from then on.
#[test]
fn another_storage_schema_is_refused_unless_accepted() {
    let _no_spawn = no_spawn();
    let dir = build("schema", 4, Some(2));
    let newer = Identity {
        storage: "f".repeat(64),
        ..identity()
    };
    let actor = Journal::server(Id::from(0), &Layout::new(&[1], 0)).expect("server");
    let open_as = |who: &Identity, write| storage::recover::<Journal>(&dir, who, &actor, Id::from(0), write);
    for write in [false, true] {
        match open_as(&newer, write) {
            Err(RecoverError::Unusable(t)) => assert!(
                t.contains("another storage schema")
                    && t.contains(&identity().storage)
                    && t.contains(&newer.storage)
                    && t.contains("--accept-storage-schema"),
                "{t}"
            ),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("loaded a directory of another storage schema"),
        }
    }
    // Inspecting with consent changes nothing on disk.
    let accepted = Identity {
        accept_other_storage: true,
        ..newer.clone()
    };
    let (r, _) = open_as(&accepted, false).expect("inspect");
    assert_eq!(items(&r), vec![1, 2, 3, 4]);
    assert!(open_as(&newer, false).is_err());
    // Opening for writing with consent records the new schema.
    let (r, store) = open_as(&accepted, true).expect("accepted");
    assert_eq!((items(&r), r.snapshot_lsn), (vec![1, 2, 3, 4], 2));
    drop(store);
    let (r, _) = open_as(&newer, true).expect("the new schema is recorded");
    assert_eq!(r.last_lsn, 4);
    assert!(matches!(open(&dir, false), Err(RecoverError::Unusable(t)) if t.contains("another storage schema")));
    // A directory of another node is refused even with consent.
    let other_node = Identity { cluster: 8, ..accepted };
    assert!(matches!(open_as(&other_node, false), Err(RecoverError::Unusable(t)) if t.contains("another node")));
    // The schema is the spec's: the Journal's durable state, by name and type.
    assert!(
        Journal::STORAGE_SCHEMA.contains("items: list<u64>"),
        "{}",
        Journal::STORAGE_SCHEMA
    );
    assert_eq!(identity().storage, storage::storage_schema_hash::<Journal>());
}

#[test]
fn node_refuses_to_start_on_a_corrupt_directory() {
    let dir = scratch("refuse");
    let (file, cluster) = write_cluster(&dir, &[("Server", 1, true)]);
    let mut node = NodeProc::start("journal", &dir, &file, 0, &[]);
    wait_up(&cluster, &[0]);
    let mut c = smelt_runtime::client::Client::<Journal>::new(&cluster, Default::default()).expect("client");
    for v in 0..10 {
        c.call(common::journal::Request::Append { v }).expect("append");
    }
    assert_eq!(node.term(), Some(0));

    let wal = file_with(&node.data, "wal-");
    let mut b = std::fs::read(&wal).expect("read");
    let at = storage::SEGMENT_HEADER_LEN as usize + 3;
    b[at] ^= 0xff;
    std::fs::write(&wal, &b).expect("write");
    let mut node = NodeProc::start("journal", &dir, &file, 0, &[]);
    assert_eq!(node.wait_exit(Duration::from_secs(20)), Some(3), "{}", node.log_text());
    let log = node.log_text();
    let name = wal.file_name().expect("name").to_string_lossy().into_owned();
    assert!(log.contains(&name) && log.contains("at byte 24"), "{log}");

    std::fs::remove_dir_all(&node.data).expect("wipe");
    let _node = NodeProc::start("journal", &dir, &file, 0, &[]);
    wait_up(&cluster, &[0]);
    let (n, _) = c.call(common::journal::Request::Count).expect("count");
    assert_eq!(n, common::journal::Reply::Counted(0));
    drop(_node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real file system with a clock of its own that each read of an open
/// file moves 5 ms on: recovery of a few hundred records then "takes"
/// seconds, as a large log does, without the test waiting for them.
#[derive(Clone)]
struct ClockFs {
    start: std::time::Instant,
    reads: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

const READ_TAKES: Duration = Duration::from_millis(5);

impl ClockFs {
    fn new() -> Self {
        ClockFs {
            start: std::time::Instant::now(),
            reads: Default::default(),
        }
    }
    fn elapsed(&self) -> Duration {
        READ_TAKES * self.reads.load(std::sync::atomic::Ordering::SeqCst) as u32
    }
}

struct ClockFile(std::fs::File, std::sync::Arc<std::sync::atomic::AtomicU64>);

impl smelt_runtime::vfs::Vfs for ClockFs {
    type File = ClockFile;
    type Lock = std::fs::File;
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        smelt_runtime::vfs::OsFs.create_dir_all(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<std::fs::File> {
        smelt_runtime::vfs::OsFs.lock(path)
    }
    fn read_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        smelt_runtime::vfs::OsFs.read_dir(dir)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        smelt_runtime::vfs::OsFs.read(path)
    }
    fn open(&self, path: &Path) -> std::io::Result<ClockFile> {
        smelt_runtime::vfs::OsFs
            .open(path)
            .map(|f| ClockFile(f, self.reads.clone()))
    }
    fn create(&self, path: &Path) -> std::io::Result<ClockFile> {
        smelt_runtime::vfs::OsFs
            .create(path)
            .map(|f| ClockFile(f, self.reads.clone()))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        smelt_runtime::vfs::OsFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        smelt_runtime::vfs::OsFs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        smelt_runtime::vfs::OsFs.sync_dir(dir)
    }
    fn now(&self) -> std::time::Instant {
        self.start + self.elapsed()
    }
}

impl smelt_runtime::vfs::VfsFile for ClockFile {
    fn size(&mut self) -> std::io::Result<u64> {
        self.0.size()
    }
    fn read_exact_at(&mut self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.read_exact_at(off, buf)
    }
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.append(data)
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        smelt_runtime::vfs::VfsFile::set_len(&mut self.0, len)
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        smelt_runtime::vfs::VfsFile::sync_data(&mut self.0)
    }
}

/// Log lines captured in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A recovery that takes more than a second says how far it got, once a
/// second (issue 19 item 5), and still recovers everything.
#[test]
fn a_long_recovery_logs_its_progress() {
    let _guard = no_spawn();
    let dir = build("progress", 200, None);
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let actor = Journal::server(Id::from(0), &Layout::new(&[1], 0)).expect("server");
    let fs = ClockFs::new();
    let r = tracing::subscriber::with_default(subscriber, || {
        storage::recover_in::<Journal, _>(&fs, &dir, &identity(), &actor, Id::from(0), false)
    })
    .expect("recovers")
    .0;
    let took = fs.elapsed();
    assert_eq!(items(&r), (1..=200).collect::<Vec<u64>>());
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).expect("utf-8");
    let lines = text.lines().filter(|l| l.contains("replaying the log")).count();
    assert!(
        took >= Duration::from_secs(2),
        "recovery took only {took:?} by its clock: the test lost its point"
    );
    // A line each time a second has passed since the last: as many lines
    // as whole seconds, give or take the last record's reads.
    let secs = took.as_secs() as usize;
    assert!(
        (secs - 1..=secs).contains(&lines),
        "{lines} progress lines in {took:?}:\n{text}"
    );
    assert!(text.contains("records="), "{text}");
}
