//! The file system storage uses, behind a narrow interface: the real one
//! (`OsFs`, `std::fs`), and `SimFs`, an in-memory disk for the
//! deterministic simulator that loses what was not made durable.
//!
//! `SimFs` keeps, per file, what the process sees and what is on the disk,
//! and per directory, the entries the process sees and the durable ones —
//! the rules of POSIX file systems (and of LazyFS, etcd's fault-injecting
//! file system): `sync_data`/`sync_all` make a file's bytes durable,
//! `sync_dir` makes the directory's entries (creations, renames, removals)
//! durable. A crash keeps only the durable state, plus, for a file that
//! was being appended to, any prefix of the bytes written after its last
//! sync (a torn write), possibly with its last pages zeroed. Storage code
//! that forgets a sync loses data under `SimFs` exactly as it would on a
//! disk after a power failure — which the simulator's checks then see.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A file system, as storage uses it.
pub trait Vfs: Clone + Send + Sync + 'static {
    type File: VfsFile;
    /// Held while a node uses a data directory.
    type Lock: Send + 'static;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` if needed and locks it exclusively; an error if it is
    /// locked already.
    fn lock(&self, path: &Path) -> io::Result<Self::Lock>;
    /// The names of the files in `dir`.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Creates a file, or truncates an existing one, for writing.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// The clock that paces what storage reports while it works (a long
    /// recovery's progress lines). The wall clock, except where a test's
    /// file system keeps time of its own, so that the pacing can be
    /// checked without waiting for it.
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
}

pub trait VfsFile: Send + 'static {
    /// The file's length in bytes (`&mut`: the real one asks the kernel).
    fn size(&mut self) -> io::Result<u64>;
    fn read_exact_at(&mut self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes at the end of the file.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file's bytes (and its length) durable.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFs;

impl Vfs for OsFs {
    type File = File;
    type Lock = File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<File> {
        let f = File::create(path)?;
        f.try_lock()
            .map_err(|_| io::Error::new(io::ErrorKind::WouldBlock, "locked"))?;
        Ok(f)
    }
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
    fn open(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(path)
    }
    fn create(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl VfsFile for File {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn read_exact_at(&mut self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.seek(SeekFrom::Start(off))?;
        self.read_exact(buf)
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.seek(SeekFrom::End(0))?;
        self.write_all(data)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        // fdatasync also persists the file size, which appends change.
        File::sync_data(self)
    }
}

/// One file's bytes: as the process sees them, and as they are on disk.
#[derive(Clone, Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct Dir {
    /// Name -> inode, as the process sees it.
    entries: BTreeMap<String, u64>,
    /// As it is on disk (up to the last `sync_dir`).
    durable: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Disk {
    inodes: BTreeMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    /// Locked paths, with the number of the lock that holds each.
    locks: BTreeMap<PathBuf, u64>,
    next_lock: u64,
    next_inode: u64,
    /// Syncs made (all kinds): the simulator's disk-activity counter.
    syncs: u64,
    /// Injected: every write or sync fails from now on.
    failing: bool,
}

/// How a crash treats the bytes a file got after its last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornWrite {
    /// Lost (the common case: the write never reached the disk).
    Lost,
    /// This many of them reached the disk.
    Prefix(u64),
    /// This many reached the disk, but the last page they touched reads
    /// as zeros (a page that was allocated and never written).
    ZeroedPage(u64),
}

/// An in-memory disk. Cloning shares it (several handles, one disk).
#[derive(Clone, Debug, Default)]
pub struct SimFs {
    disk: Arc<Mutex<Disk>>,
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Ok((dir.to_path_buf(), name.to_string_lossy().into_owned()))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

fn injected() -> io::Error {
    io::Error::other("injected disk failure")
}

impl SimFs {
    pub fn new() -> SimFs {
        SimFs::default()
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        // A poisoned lock means a simulator thread panicked; the state is
        // still what it was.
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn inode_of(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        let d = self.disk();
        d.dirs
            .get(&dir)
            .and_then(|x| x.entries.get(&name))
            .copied()
            .ok_or_else(|| not_found(path))
    }

    /// The machine loses power: every directory and file goes back to its
    /// durable state; a file with bytes written after its last sync keeps
    /// what `torn(path, written_after_sync)` says of them. Locks are freed.
    pub fn crash(&self, mut torn: impl FnMut(&Path, u64) -> TornWrite) {
        let mut d = self.disk();
        let mut live = BTreeSet::new();
        let dirs: Vec<PathBuf> = d.dirs.keys().cloned().collect();
        for dir in dirs {
            let Some(x) = d.dirs.get_mut(&dir) else { continue };
            x.entries = x.durable.clone();
            for (name, ino) in x.entries.clone() {
                live.insert((ino, dir.join(name)));
            }
        }
        let mut reachable = BTreeSet::new();
        for (ino, path) in live {
            reachable.insert(ino);
            let Some(f) = d.inodes.get_mut(&ino) else { continue };
            let appended = f.data.len() > f.durable.len() && f.data.starts_with(&f.durable);
            let mut kept = f.durable.clone();
            if appended {
                let extra = (f.data.len() - f.durable.len()) as u64;
                match torn(&path, extra) {
                    TornWrite::Lost => {}
                    TornWrite::Prefix(n) => {
                        let n = n.min(extra) as usize;
                        kept.extend_from_slice(&f.data[f.durable.len()..f.durable.len() + n]);
                    }
                    TornWrite::ZeroedPage(n) => {
                        let n = n.min(extra) as usize;
                        let end = f.durable.len() + n;
                        kept.extend_from_slice(&f.data[f.durable.len()..end]);
                        let page_start = (end.saturating_sub(1) / 4096 * 4096).max(f.durable.len());
                        for b in &mut kept[page_start..end] {
                            *b = 0;
                        }
                    }
                }
            }
            f.data = kept.clone();
            f.durable = kept;
        }
        d.inodes.retain(|ino, _| reachable.contains(ino));
        d.locks.clear();
        d.failing = false;
    }

    /// Flips one bit of the durable (and current) bytes of `path` at
    /// `offset` (a disk that rots); false if there is no such byte.
    pub fn flip(&self, path: &Path, offset: u64, bit: u8) -> bool {
        let Ok(ino) = self.inode_of(path) else { return false };
        let mut d = self.disk();
        let Some(f) = d.inodes.get_mut(&ino) else { return false };
        let off = offset as usize;
        if off >= f.durable.len() || off >= f.data.len() {
            return false;
        }
        f.durable[off] ^= 1 << (bit % 8);
        f.data[off] ^= 1 << (bit % 8);
        true
    }

    /// From now on (until the next crash) every write and sync fails.
    pub fn fail(&self) {
        self.disk().failing = true;
    }

    /// The durable size of each file in `dir`, by name.
    pub fn durable_files(&self, dir: &Path) -> Vec<(String, u64)> {
        let d = self.disk();
        let Some(x) = d.dirs.get(dir) else { return Vec::new() };
        x.durable
            .iter()
            .map(|(n, ino)| (n.clone(), d.inodes.get(ino).map_or(0, |f| f.durable.len() as u64)))
            .collect()
    }

    /// Syncs made so far.
    pub fn syncs(&self) -> u64 {
        self.disk().syncs
    }
}

/// An open file of a `SimFs`.
pub struct SimFile {
    fs: SimFs,
    ino: u64,
}

/// The lock of a `SimFs` file: freed when dropped (or by a crash, after
/// which dropping it frees nothing a later lock holds).
pub struct SimLock {
    fs: SimFs,
    path: PathBuf,
    number: u64,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut d = self.fs.disk();
        if d.locks.get(&self.path) == Some(&self.number) {
            d.locks.remove(&self.path);
        }
    }
}

impl Vfs for SimFs {
    type File = SimFile;
    type Lock = SimLock;

    /// Directories are durable once created (the simulator's nodes get
    /// their directory before they start).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut d = self.disk();
        d.dirs.entry(dir.to_path_buf()).or_default();
        Ok(())
    }
    fn lock(&self, path: &Path) -> io::Result<SimLock> {
        drop(self.create_file(path, false)?);
        let mut d = self.disk();
        if d.locks.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "locked"));
        }
        d.next_lock += 1;
        let number = d.next_lock;
        d.locks.insert(path.to_path_buf(), number);
        Ok(SimLock {
            fs: self.clone(),
            path: path.to_path_buf(),
            number,
        })
    }
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let d = self.disk();
        d.dirs
            .get(dir)
            .map(|x| x.entries.keys().cloned().collect())
            .ok_or_else(|| not_found(dir))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let ino = self.inode_of(path)?;
        let d = self.disk();
        Ok(d.inodes.get(&ino).map(|f| f.data.clone()).unwrap_or_default())
    }
    fn open(&self, path: &Path) -> io::Result<SimFile> {
        let ino = self.inode_of(path)?;
        Ok(SimFile { fs: self.clone(), ino })
    }
    fn create(&self, path: &Path) -> io::Result<SimFile> {
        self.create_file(path, true)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (fd, fname) = split(from)?;
        let (td, tname) = split(to)?;
        let mut d = self.disk();
        if d.failing {
            return Err(injected());
        }
        let ino = d
            .dirs
            .get_mut(&fd)
            .and_then(|x| x.entries.remove(&fname))
            .ok_or_else(|| not_found(from))?;
        d.dirs.entry(td).or_default().entries.insert(tname, ino);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let mut d = self.disk();
        if d.failing {
            return Err(injected());
        }
        d.dirs
            .get_mut(&dir)
            .and_then(|x| x.entries.remove(&name))
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut d = self.disk();
        if d.failing {
            return Err(injected());
        }
        d.syncs += 1;
        let x = d.dirs.get_mut(dir).ok_or_else(|| not_found(dir))?;
        x.durable = x.entries.clone();
        Ok(())
    }
}

impl SimFs {
    fn create_file(&self, path: &Path, truncate: bool) -> io::Result<SimFile> {
        let (dir, name) = split(path)?;
        let mut d = self.disk();
        if d.failing {
            return Err(injected());
        }
        let existing = d
            .dirs
            .get(&dir)
            .ok_or_else(|| not_found(&dir))?
            .entries
            .get(&name)
            .copied();
        let ino = match existing {
            Some(ino) => {
                if truncate {
                    if let Some(f) = d.inodes.get_mut(&ino) {
                        f.data.clear();
                    }
                }
                ino
            }
            None => {
                d.next_inode += 1;
                let ino = d.next_inode;
                d.inodes.insert(ino, Inode::default());
                if let Some(x) = d.dirs.get_mut(&dir) {
                    x.entries.insert(name, ino);
                }
                ino
            }
        };
        Ok(SimFile { fs: self.clone(), ino })
    }
}

impl VfsFile for SimFile {
    fn size(&mut self) -> io::Result<u64> {
        let d = self.fs.disk();
        Ok(d.inodes.get(&self.ino).map_or(0, |f| f.data.len() as u64))
    }
    fn read_exact_at(&mut self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let d = self.fs.disk();
        let f = d.inodes.get(&self.ino).ok_or_else(|| io::Error::other("file gone"))?;
        let off = off as usize;
        let end = off.checked_add(buf.len()).filter(|e| *e <= f.data.len());
        let Some(end) = end else {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"));
        };
        buf.copy_from_slice(&f.data[off..end]);
        Ok(())
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut d = self.fs.disk();
        if d.failing {
            return Err(injected());
        }
        let f = d
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("file gone"))?;
        f.data.extend_from_slice(data);
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut d = self.fs.disk();
        if d.failing {
            return Err(injected());
        }
        let f = d
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("file gone"))?;
        f.data.resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let mut d = self.fs.disk();
        if d.failing {
            return Err(injected());
        }
        d.syncs += 1;
        let f = d
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("file gone"))?;
        f.durable = f.data.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_keeps_only_what_was_synced() {
        let fs = SimFs::new();
        let dir = Path::new("/d");
        fs.create_dir_all(dir).unwrap();
        let mut a = fs.create(&dir.join("a")).unwrap();
        a.append(b"hello").unwrap();
        a.sync_data().unwrap();
        // The file's bytes are durable, but its name is not yet.
        fs.crash(|_, _| TornWrite::Lost);
        assert!(fs.read(&dir.join("a")).is_err());

        let mut a = fs.create(&dir.join("a")).unwrap();
        a.append(b"hello").unwrap();
        a.sync_data().unwrap();
        fs.sync_dir(dir).unwrap();
        a.append(b" world").unwrap();
        fs.crash(|_, _| TornWrite::Lost);
        assert_eq!(fs.read(&dir.join("a")).unwrap(), b"hello");

        // A torn append keeps a prefix of the unsynced bytes.
        let mut a = fs.open(&dir.join("a")).unwrap();
        a.append(b" world").unwrap();
        fs.crash(|_, n| TornWrite::Prefix(n - 2));
        assert_eq!(fs.read(&dir.join("a")).unwrap(), b"hello wor");

        // A rename without a sync of the directory is lost.
        fs.rename(&dir.join("a"), &dir.join("b")).unwrap();
        assert!(fs.read(&dir.join("b")).is_ok());
        fs.crash(|_, _| TornWrite::Lost);
        assert!(fs.read(&dir.join("b")).is_err() && fs.read(&dir.join("a")).is_ok());
    }

    #[test]
    fn locks_exclude_until_dropped_or_a_crash() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let l = fs.lock(Path::new("/d/LOCK")).unwrap();
        assert!(fs.lock(Path::new("/d/LOCK")).is_err());
        drop(l);
        let _l = fs.lock(Path::new("/d/LOCK")).unwrap();
        fs.crash(|_, _| TornWrite::Lost);
        assert!(fs.lock(Path::new("/d/LOCK")).is_ok());
    }
}
