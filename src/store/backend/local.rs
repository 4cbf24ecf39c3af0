//! The local-filesystem backend: create-only writes by temp file + fsync + hard link, atomic
//! replacement by rename, and an advisory `File::lock`.
//!
//! Why a hard link rather than `O_EXCL` on the final name: `link(2)` fails with `EEXIST` if the
//! name is taken, exactly like `O_EXCL`, but the file it publishes was already written and
//! fsynced under a temporary name, so a reader can never open a half-written record, and a crash
//! leaves at most a whole temp file behind (debris that gc removes). The directory holding the
//! new name is fsynced before the call returns, so a completed write survives power loss. On NFS
//! a retransmitted `link` can report `EEXIST` for a request that in fact succeeded: when the name
//! then holds the very inode of our temp file, the write is ours ([`link_outcome`]).
//!
//! Hostile or odd files: every record is opened with `O_NOFOLLOW | O_NONBLOCK` and must be a
//! regular file, so a planted symlink cannot redirect a read and a planted FIFO cannot hang it;
//! either is refused with a [`WoodlotError::Store`] naming the file. Listings keep canonical
//! names only ([`super::is_canonical`]).
//!
//! Shared directories: files are created with mode `0666` less the umask (the lock file too), so
//! a team's group-writable, setgid store directory with `umask 002` lets every member write.
//! Refreshing a blob another user created uses `futimens(fd, NULL)` ("now", which needs only
//! write access, not ownership) and, failing that, rewrites it under our name (temp + rename);
//! the lock is taken on a read-only descriptor if `LOCK` is not writable for us (`flock` needs
//! none).
//!
//! Every step goes through [`faults::step`](step) so tests can fail or crash at each one, reads
//! included. `WOODLOT_TEST_NO_LOCK=1` (test-only, read when the backend is made) skips the
//! advisory lock, so process races exercise the create-only protocol alone.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, WoodlotError};
use crate::store::backend::faults::step;
use crate::store::backend::{is_canonical, Backend, Entry, LockGuard, ObjectMeta, WriterLock};
use crate::store::layout::{Dir, Key};

/// Counter that makes temp names unique within a process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Test-only: set to `1` to make the local backend skip its advisory writer lock, so that
/// concurrent-process tests exercise the create-only protocol itself. Never set it in
/// production: the lock is what saves writers from retrying, and gc from racing a save.
pub const ENV_TEST_NO_LOCK: &str = "WOODLOT_TEST_NO_LOCK";

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
    /// False only under [`ENV_TEST_NO_LOCK`].
    locking: bool,
}

/// A unique temp file name: pid, time and a per-process counter.
fn temp_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos}-{n}.tmp", std::process::id())
}

/// Writes `bytes` to a new file at `path` (create-only, mode `0666` less the umask) and fsyncs
/// it; on any failure the file is removed.
fn write_new_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    step("create_temp")?;
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    let written = (|| {
        step("write_temp")?;
        file.write_all(bytes)?;
        step("fsync_temp")?;
        file.sync_all()
    })();
    drop(file);
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// Fsyncs the directory holding `path`, so a name just linked, renamed or removed is durable.
fn fsync_dir_of(path: &Path) -> io::Result<()> {
    step("fsync_dir")?;
    #[cfg(unix)]
    {
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)?.sync_all()?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes a whole file durably, the way the store writes its own: a temp file in the same
/// directory, fsync, rename over `path`, fsync of the directory. Readers see the old file or the
/// new one, never a part; after a crash there is the old file or the new one (and at most a
/// `.<name>.<pid>-...tmp` beside it). Permissions are `0666` less the umask, like any file the
/// user creates (not the `0600` of a `mkstemp`). This is what `woodlot.dump` uses.
pub fn write_file_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |what: &str, e| WoodlotError::io(format!("{what} {}", path.display()), e);
    let name = path
        .file_name()
        .ok_or_else(|| {
            io_err(
                "writing",
                io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = path.with_file_name(format!(".{name}.{}", temp_name()));
    write_new_synced(&tmp, bytes).map_err(|e| io_err("writing", e))?;
    if let Err(e) = step("rename").and_then(|_| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("replacing", e));
    }
    fsync_dir_of(path).map_err(|e| io_err("syncing the directory of", e))
}

/// What a `link(tmp, dest)` meant: `Ok(true)` it published our file, `Ok(false)` another writer
/// had the name first. An `EEXIST` is ours after all when `dest` is the same file as `tmp`
/// (`same_file`, asked only then): on NFS the client retransmits a `link` whose reply was lost,
/// and the server, having done the first, answers the second with `EEXIST`.
pub(crate) fn link_outcome(
    linked: io::Result<()>,
    same_file: impl FnOnce() -> bool,
) -> io::Result<bool> {
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(same_file()),
        Err(e) => Err(e),
    }
}

/// Device and inode of a path (not following a symlink), if it exists.
#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether two paths name the same inode.
fn same_inode(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        matches!((file_id(a), file_id(b)), (Some(x), Some(y)) if x == y)
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// How a record file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// Opens an existing file without following a symlink or blocking on a FIFO, and checks that it
/// is a regular file. `Ok(None)` if it does not exist. The error of anything else is an
/// `io::Error` whose message says what the file is.
fn open_regular(path: &Path, access: Access) -> io::Result<Option<(File, Metadata)>> {
    let mut opts = OpenOptions::new();
    match access {
        Access::Read => opts.read(true),
        Access::Write => opts.write(true),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // ELOOP: the last component is a symlink; ENXIO: a FIFO with no reader (write).
            if let Some(kind) = not_regular(path) {
                return Err(not_regular_error(kind));
            }
            return Err(e);
        }
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular_error(describe(&meta)));
    }
    Ok(Some((file, meta)))
}

/// What a path is, if it exists and is not a regular file.
fn not_regular(path: &Path) -> Option<&'static str> {
    let meta = fs::symlink_metadata(path).ok()?;
    (!meta.is_file()).then(|| describe(&meta))
}

fn describe(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Marker message of [`not_regular_error`], recognised by [`LocalBackend::io_err`].
const NOT_REGULAR: &str = "is not a regular file";

fn not_regular_error(kind: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{NOT_REGULAR}: it is {kind}"),
    )
}

/// Sets a file's times to now. `futimens(fd, NULL)` needs only write access to the file, where
/// setting an explicit time (what `File::set_modified` does) needs ownership, so this works on a
/// blob another member of a shared group directory created.
fn touch_now(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: a valid open descriptor, and NULL means "both times to now".
        let rc = unsafe { libc::futimens(file.as_raw_fd(), std::ptr::null()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(unix))]
    {
        file.set_modified(SystemTime::now())
    }
}

/// Whether an error means "you may not write this here" (a read-only mount, a file or directory
/// of someone else's), as opposed to a failure of the storage.
fn is_denied(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::PermissionDenied {
        return true;
    }
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EROFS | libc::EPERM | libc::EACCES)
        )
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// What the meta of a local file is ([`ObjectMeta`]), its etag being identity + mtime + size.
fn meta_of(meta: &Metadata) -> ObjectMeta {
    let last_modified = meta.modified().ok();
    #[cfg(unix)]
    let etag = {
        use std::os::unix::fs::MetadataExt;
        Some(format!(
            "{}:{}:{}.{:09}:{}",
            meta.dev(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.len()
        ))
    };
    #[cfg(not(unix))]
    let etag = last_modified.and_then(|t| {
        t.duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| format!("{}:{}", d.as_nanos(), meta.len()))
    });
    ObjectMeta {
        size: meta.len(),
        last_modified,
        etag,
        version: None,
    }
}

impl LocalBackend {
    /// A backend rooted at `root` (created if missing, with its parents).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.is_dir() {
            if root.exists() {
                return Err(WoodlotError::Store(format!(
                    "{} exists and is not a directory",
                    root.display()
                )));
            }
            fs::create_dir_all(&root).map_err(|e| {
                WoodlotError::io(format!("creating store directory {}", root.display()), e)
            })?;
        }
        let locking = std::env::var(ENV_TEST_NO_LOCK).map_or(true, |v| v.trim() != "1");
        Ok(Self { root, locking })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &Key) -> PathBuf {
        // Keys render only store-assigned numbers and validated digests (see `layout`).
        self.root.join(key.path())
    }

    /// Writes `bytes` to a fresh temp file in `tmp/` and fsyncs it; on failure it is removed.
    fn write_temp(&self, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.root.join(Dir::Tmp.name()).join(temp_name());
        write_new_synced(&path, bytes)?;
        Ok(path)
    }

    fn io_err(&self, what: &str, key: &Key, e: io::Error) -> WoodlotError {
        if e.kind() == io::ErrorKind::InvalidData && e.to_string().starts_with(NOT_REGULAR) {
            return WoodlotError::Store(format!(
                "{} in store {} {e}; a store holds only regular files, so something else \
                 put it there: move it away (and restore the record from a backup if it was one)",
                key.path(),
                self.root.display()
            ));
        }
        WoodlotError::io(
            format!("{what} {} in store {}", key.path(), self.root.display()),
            e,
        )
    }

    /// Opens `LOCK` for locking: read-write (created if missing), or read-only if this process
    /// may not write that file (another user's, in a shared directory). `Ok(Err(why))` when the
    /// store is read-only for this process: a read-only mount, or no `LOCK` it could open.
    fn open_lock(&self) -> Result<std::result::Result<File, io::Error>> {
        let path = self.path(&Key::Lock);
        let lock_err = |e| WoodlotError::io(format!("opening lock file {}", path.display()), e);
        let regular = |file: File| -> Result<File> {
            let meta = file.metadata().map_err(lock_err)?;
            if meta.is_file() {
                Ok(file)
            } else {
                Err(self.io_err("opening", &Key::Lock, not_regular_error(describe(&meta))))
            }
        };
        let mut rw = OpenOptions::new();
        rw.read(true).write(true).create(true).truncate(false);
        let mut ro = OpenOptions::new();
        ro.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // A planted symlink must not make us create or lock a file elsewhere.
            rw.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
            ro.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        }
        step("lock_open").map_err(lock_err)?;
        match rw.open(&path) {
            Ok(f) => regular(f).map(Ok),
            // A read-only mount: nobody here writes, and a writer must hear so at once.
            #[cfg(unix)]
            Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(Err(e)),
            Err(e) if is_denied(&e) => match ro.open(&path) {
                Ok(f) => regular(f).map(Ok),
                Err(e2) if is_denied(&e2) || e2.kind() == io::ErrorKind::NotFound => Ok(Err(e)),
                Err(e2) => Err(self.io_err("opening", &Key::Lock, e2)),
            },
            // ELOOP: a planted symlink, refused like any record that is not a regular file.
            Err(e) => Err(match not_regular(&path) {
                Some(kind) => self.io_err("opening", &Key::Lock, not_regular_error(kind)),
                None => self.io_err("opening", &Key::Lock, e),
            }),
        }
    }

    fn acquire(&self, file: File) -> Result<LockGuard> {
        let path = self.path(&Key::Lock);
        // flock(2): per open file, so threads holding separate opens exclude each other too, and
        // the kernel releases it when the holder dies, however it dies. A read-only descriptor
        // is enough for it.
        step("lock_acquire")
            .and_then(|_| file.lock())
            .map_err(|e| WoodlotError::io(format!("locking {}", path.display()), e))?;
        Ok(Box::new(file))
    }

    /// Refreshes a blob we may not `futimens` by rewriting it under our own name: same bytes,
    /// new inode owned by us, mtime now (content-addressed, so readers cannot tell).
    fn refresh_by_rewrite(&self, key: &Key) -> Result<()> {
        let bytes = self.read(key, u64::MAX)?.ok_or_else(|| {
            self.io_err(
                "refreshing",
                key,
                io::Error::new(io::ErrorKind::NotFound, "it vanished; save again"),
            )
        })?;
        self.replace(key, &bytes)
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list_root(&self) -> Result<Vec<String>> {
        let listing = |e| WoodlotError::io(format!("listing {}", self.root.display()), e);
        step("read_list_root").map_err(listing)?;
        let rd = fs::read_dir(&self.root).map_err(listing)?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(listing)?;
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    fn ensure_dirs(&self) -> Result<()> {
        for dir in Dir::ALL {
            self.ensure_dir(dir)?;
        }
        Ok(())
    }

    fn ensure_dir(&self, dir: Dir) -> Result<()> {
        let path = self.root.join(dir.name());
        if path.is_dir() {
            return Ok(());
        }
        match step("mkdir").and_then(|_| fs::create_dir(&path)) {
            Ok(()) => fsync_dir_of(&path)
                .map_err(|e| WoodlotError::io(format!("syncing {}", self.root.display()), e)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(WoodlotError::io(format!("creating {}", path.display()), e)),
        }
    }

    fn read(&self, key: &Key, max_len: u64) -> Result<Option<Vec<u8>>> {
        let path = self.path(key);
        let opened = step("read_open").and_then(|_| open_regular(&path, Access::Read));
        let (mut file, meta) = match opened {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.io_err("opening", key, e)),
        };
        let len = meta.len();
        if len > max_len {
            return Err(WoodlotError::corrupt(format!(
                "{} is {len} bytes, more than the {max_len} such a record can be",
                key.path()
            )));
        }
        let mut buf = Vec::with_capacity(len as usize);
        // `take` bounds the read even if the file grows underneath us.
        step("read_data")
            .and_then(|_| {
                (&mut file)
                    .take(max_len.saturating_add(1))
                    .read_to_end(&mut buf)
            })
            .map_err(|e| self.io_err("reading", key, e))?;
        if buf.len() as u64 > max_len {
            return Err(WoodlotError::corrupt(format!(
                "{} grew past {max_len} bytes",
                key.path()
            )));
        }
        Ok(Some(buf))
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        match step("read_exists").and_then(|_| fs::symlink_metadata(self.path(key))) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_err("checking", key, e)),
        }
    }

    fn create_new(&self, key: &Key, bytes: &[u8]) -> Result<bool> {
        let dest = self.path(key);
        let tmp = self
            .write_temp(bytes)
            .map_err(|e| self.io_err("writing", key, e))?;
        let linked = link_outcome(
            step("link").and_then(|_| fs::hard_link(&tmp, &dest)),
            || same_inode(&tmp, &dest),
        );
        // The temp name has served its purpose either way; if removing it fails it is debris.
        let _ = step("remove_temp").and_then(|_| fs::remove_file(&tmp));
        match linked {
            Ok(true) => {
                fsync_dir_of(&dest).map_err(|e| self.io_err("syncing directory of", key, e))?;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) => Err(self.io_err("publishing", key, e)),
        }
    }

    fn replace(&self, key: &Key, bytes: &[u8]) -> Result<()> {
        let dest = self.path(key);
        let tmp = self
            .write_temp(bytes)
            .map_err(|e| self.io_err("writing", key, e))?;
        if let Err(e) = step("rename").and_then(|_| fs::rename(&tmp, &dest)) {
            let _ = fs::remove_file(&tmp);
            return Err(self.io_err("replacing", key, e));
        }
        fsync_dir_of(&dest).map_err(|e| self.io_err("syncing directory of", key, e))
    }

    fn remove(&self, key: &Key) -> Result<bool> {
        let path = self.path(key);
        match step("remove").and_then(|_| fs::remove_file(&path)) {
            Ok(()) => {
                fsync_dir_of(&path).map_err(|e| self.io_err("syncing directory of", key, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_err("removing", key, e)),
        }
    }

    fn touch(&self, key: &Key) -> Result<()> {
        let path = self.path(key);
        let done = step("touch").and_then(|_| match open_regular(&path, Access::Write)? {
            Some((file, _)) => touch_now(&file),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "it vanished (removed by gc?); save again",
            )),
        });
        match done {
            Ok(()) => Ok(()),
            // Someone else's file that we may not write: make it ours (a shared directory).
            Err(e) if is_denied(&e) => self.refresh_by_rewrite(key),
            Err(e) => Err(self.io_err("touching", key, e)),
        }
    }

    fn list(&self, dir: Dir) -> Result<Vec<Entry>> {
        let path = self.root.join(dir.name());
        let listing = |e| WoodlotError::io(format!("listing {}", path.display()), e);
        let rd = match step("read_list").and_then(|_| fs::read_dir(&path)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(listing(e)),
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(listing)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: not ours, and not a key
            };
            if !is_canonical(dir, &name) {
                continue; // a stray `7.json`, a backup, a foreign file: not a record
            }
            // A file removed between readdir and stat is simply gone. (Not followed: a
            // symlink is listed as itself, and refused when read.)
            let Ok(meta) = entry.metadata() else { continue };
            let last_modified = meta.modified().ok();
            let age_seconds = last_modified.map(|m| {
                now.duration_since(m)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0)
            });
            out.push(Entry {
                name,
                size: meta.len(),
                age_seconds,
                last_modified,
                etag: meta_of(&meta).etag,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        match step("read_head").and_then(|_| fs::symlink_metadata(self.path(key))) {
            Ok(meta) => Ok(Some(meta_of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_err("checking", key, e)),
        }
    }

    fn lock(&self) -> Result<LockGuard> {
        if !self.locking {
            return Ok(Box::new(()));
        }
        match self.open_lock()? {
            Ok(file) => self.acquire(file),
            // The errno (EROFS, EACCES) reaches Python as the matching OSError.
            Err(e) => Err(WoodlotError::io(
                format!("opening lock file {}", self.path(&Key::Lock).display()),
                e,
            )),
        }
    }

    fn lock_or_read_only(&self) -> Result<WriterLock> {
        if !self.locking {
            return Ok(WriterLock::Held(Box::new(())));
        }
        match self.open_lock()? {
            Ok(file) => self.acquire(file).map(WriterLock::Held),
            Err(e) => Ok(WriterLock::ReadOnly {
                reason: format!(
                    "cannot create the lock file {}: {e}",
                    self.path(&Key::Lock).display()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::faults::{self, FaultMode};
    use crate::store::layout::Digest;
    use crate::store::testutil::TempDir;

    fn backend(t: &TempDir) -> LocalBackend {
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        b
    }

    #[test]
    fn create_new_is_create_only() {
        let t = TempDir::new("create");
        let b = backend(&t);
        assert!(b.create_new(&Key::Event(1), b"first").unwrap());
        assert!(!b.create_new(&Key::Event(1), b"second").unwrap());
        assert_eq!(b.read(&Key::Event(1), 100).unwrap().unwrap(), b"first");
        assert!(
            b.list(Dir::Tmp).unwrap().is_empty(),
            "temp files are cleaned up"
        );
        assert_eq!(b.read(&Key::Event(2), 100).unwrap(), None);
    }

    #[test]
    fn replace_and_remove() {
        let t = TempDir::new("replace");
        let b = backend(&t);
        b.replace(&Key::Hint, b"1").unwrap();
        b.replace(&Key::Hint, b"22").unwrap();
        assert_eq!(b.read(&Key::Hint, 10).unwrap().unwrap(), b"22");
        assert!(b.remove(&Key::Hint).unwrap());
        assert!(!b.remove(&Key::Hint).unwrap());
        assert!(b.list(Dir::Tmp).unwrap().is_empty());
    }

    #[test]
    fn oversized_records_are_refused_before_reading() {
        let t = TempDir::new("big");
        let b = backend(&t);
        b.create_new(&Key::Event(1), &[b'x'; 1000]).unwrap();
        assert!(matches!(
            b.read(&Key::Event(1), 999),
            Err(WoodlotError::CorruptModel(_))
        ));
    }

    #[test]
    fn every_injected_fault_leaves_old_or_new_and_no_temp() {
        let t = TempDir::new("faults");
        let b = backend(&t);
        faults::reset();
        b.create_new(&Key::Manifest(1), b"x").unwrap();
        let faults_names = faults::steps();
        let n = faults_names.len() as u64;
        assert!(n >= 5, "{faults_names:?}");
        for at in 1..=n {
            let key = Key::Manifest(100 + at);
            faults::arm(at, FaultMode::Error);
            let r = b.create_new(&key, b"payload");
            faults::reset();
            match b.read(&key, 100).unwrap() {
                None => assert!(r.is_err(), "step {at}: failed silently"),
                Some(bytes) => assert_eq!(bytes, b"payload", "step {at}: partial record"),
            }
            // Only a failed unlink of the temp name itself may leave it behind (for gc).
            let leftovers = b.list(Dir::Tmp).unwrap();
            let failed_step = faults_names.get(at as usize - 1).copied();
            if failed_step != Some("remove_temp") {
                assert!(
                    leftovers.is_empty(),
                    "step {at} ({failed_step:?}) left a temp file"
                );
            }
            for e in leftovers {
                b.remove(&Key::Temp(e.name)).unwrap();
            }
        }
    }

    #[test]
    fn listings_hold_only_canonical_names() {
        let t = TempDir::new("list");
        let b = backend(&t);
        let d = Digest::of(b"blob");
        b.create_new(&Key::Blob(d.clone()), b"blob").unwrap();
        b.create_new(&Key::Manifest(7), b"{}").unwrap();
        b.create_new(&Key::Event(7), b"{}").unwrap();
        fs::write(t.0.join("blobs").join("notes.txt"), b"hi").unwrap();
        for stray in ["7.json", "07.json", "0000000007.json.bak", "7.deleted"] {
            fs::write(t.0.join("versions").join(stray), b"{}").unwrap();
        }
        for stray in ["7.json", "0000000007.json", "000000000007.json~"] {
            fs::write(t.0.join("events").join(stray), b"{}").unwrap();
        }
        let names =
            |dir| -> Vec<String> { b.list(dir).unwrap().into_iter().map(|e| e.name).collect() };
        assert_eq!(names(Dir::Blobs), vec![d.to_string()]);
        assert_eq!(names(Dir::Versions), vec!["0000000007.json"]);
        assert_eq!(names(Dir::Events), vec!["000000000007.json"]);
        for dir in [Dir::Blobs, Dir::Versions, Dir::Events] {
            for e in b.list(dir).unwrap() {
                assert!(Key::from_listing(dir, &e.name).is_some());
                assert!(e.last_modified.is_some() && e.etag.is_some(), "{e:?}");
            }
        }
    }

    /// Runs `f` on a thread and fails the test if it has not finished within `secs`.
    fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .expect("the call hung")
    }

    #[cfg(unix)]
    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    fn is_not_regular<T>(r: &Result<T>, what: &str) -> bool {
        matches!(r, Err(WoodlotError::Store(m)) if m.contains("not a regular file")
            && m.contains(what))
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_fifo_is_refused_and_never_hangs_a_read_or_a_touch() {
        let t = TempDir::new("fifo");
        let b = backend(&t);
        let d = Digest::of(b"model");
        mkfifo(&t.0.join(Key::Blob(d.clone()).path()));
        mkfifo(&t.0.join(Key::Manifest(1).path()));
        let b2 = b.clone();
        let (read, touched, exists) = within(10, move || {
            (
                b2.read(&Key::Manifest(1), 1 << 20),
                b2.touch(&Key::Blob(d.clone())),
                b2.exists(&Key::Manifest(1)),
            )
        });
        assert!(is_not_regular(&read, "FIFO"), "{read:?}");
        assert!(is_not_regular(&touched, "FIFO"), "{touched:?}");
        assert!(
            exists.unwrap(),
            "a FIFO still occupies the name (create-only)"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_does_not_redirect_a_read_or_the_lock() {
        let t = TempDir::new("symlink");
        let b = backend(&t);
        let outside = t.0.join("outside.json");
        fs::write(&outside, b"{\"not\": \"ours\"}").unwrap();
        std::os::unix::fs::symlink(&outside, t.0.join(Key::Manifest(1).path())).unwrap();
        let read = b.read(&Key::Manifest(1), 1 << 20);
        assert!(is_not_regular(&read, "symbolic link"), "{read:?}");
        // A LOCK symlink must not make the lock create or lock a file elsewhere.
        let elsewhere = t.0.join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, t.0.join("LOCK")).unwrap();
        let locked = b.lock();
        assert!(
            is_not_regular(&locked, "symbolic link"),
            "{:?}",
            locked.as_ref().err()
        );
        assert!(!elsewhere.exists(), "the lock followed the symlink");
    }

    #[test]
    fn an_nfs_retransmitted_link_is_recognised_as_ours() {
        let eexist = || Err(io::Error::from(io::ErrorKind::AlreadyExists));
        assert!(link_outcome(Ok(()), || panic!("not asked")).unwrap());
        assert!(link_outcome(eexist(), || true).unwrap(), "same inode: ours");
        assert!(!link_outcome(eexist(), || false).unwrap(), "lost race");
        assert!(link_outcome(Err(io::Error::other("EIO")), || true).is_err());

        // On a real filesystem: the first link "succeeded", its retransmission says EEXIST.
        let t = TempDir::new("nfs");
        let (tmp, dest, other) = (t.0.join("tmp"), t.0.join("dest"), t.0.join("other"));
        fs::write(&tmp, b"ours").unwrap();
        fs::write(&other, b"theirs").unwrap();
        fs::hard_link(&tmp, &dest).unwrap();
        let again = fs::hard_link(&tmp, &dest);
        assert_eq!(
            again.as_ref().unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(link_outcome(again, || same_inode(&tmp, &dest)).unwrap());
        let lost = fs::hard_link(&other, &dest);
        assert!(!link_outcome(lost, || same_inode(&other, &dest)).unwrap());
    }

    #[test]
    fn head_sees_a_touch_and_remove_if_unchanged_spares_a_touched_blob() {
        use crate::store::backend::Removal;
        let t = TempDir::new("head");
        let b = backend(&t);
        let key = Key::Blob(Digest::of(b"m"));
        assert_eq!(b.head(&key).unwrap(), None);
        b.create_new(&key, b"m").unwrap();
        let marked = b.head(&key).unwrap().unwrap();
        assert_eq!(marked.size, 1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        b.touch(&key).unwrap();
        let now = b.head(&key).unwrap().unwrap();
        assert!(!now.same_object(&marked), "{marked:?} vs {now:?}");
        assert_eq!(
            b.remove_if_unchanged(&key, &marked).unwrap(),
            Removal::Changed(now.clone())
        );
        assert!(b.exists(&key).unwrap());
        assert_eq!(b.remove_if_unchanged(&key, &now).unwrap(), Removal::Removed);
        assert_eq!(b.remove_if_unchanged(&key, &now).unwrap(), Removal::Absent);
    }

    #[cfg(unix)]
    fn umask_now() -> u32 {
        // SAFETY: umask is process-wide but setting it back at once to what it was is harmless.
        unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m as u32
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_lock_file_and_records_get_the_umask_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempDir::new("perms");
        let b = backend(&t);
        drop(b.lock().unwrap());
        b.create_new(&Key::Event(1), b"e").unwrap();
        b.replace(&Key::Hint, b"1").unwrap();
        let want = 0o666 & !umask_now();
        for key in [Key::Lock, Key::Event(1), Key::Hint] {
            let mode = fs::metadata(t.0.join(key.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, want, "{key}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn write_file_durably_replaces_whole_with_umask_permissions_and_names_the_path() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempDir::new("durable");
        let path = t.0.join("model.wdl");
        write_file_durably(&path, b"first").unwrap();
        write_file_durably(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666 & !umask_now());
        let names: Vec<_> = fs::read_dir(&t.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("model.wdl")],
            "no temp left"
        );

        let missing = t.0.join("no-such-dir").join("m.wdl");
        match write_file_durably(&missing, b"x") {
            Err(WoodlotError::Io { context, source }) => {
                assert!(
                    context.contains(&missing.display().to_string()),
                    "{context}"
                );
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        // Every step of it is a fault point, and a failure leaves the old file whole.
        faults::reset();
        write_file_durably(&path, b"third").unwrap();
        let n = faults::steps().len() as u64;
        assert_eq!(
            faults::steps(),
            [
                "create_temp",
                "write_temp",
                "fsync_temp",
                "rename",
                "fsync_dir"
            ]
        );
        for at in 1..n {
            faults::arm(at, FaultMode::Error);
            let r = write_file_durably(&path, b"fourth");
            faults::reset();
            assert!(r.is_err(), "step {at}");
            assert_eq!(fs::read(&path).unwrap(), b"third", "step {at}");
        }
        assert_eq!(
            fs::read_dir(&t.0).unwrap().count(),
            1,
            "no temp left by a failure"
        );
    }

    #[test]
    fn reads_are_fault_points_too() {
        let t = TempDir::new("read-faults");
        let b = backend(&t);
        b.create_new(&Key::Event(1), b"e").unwrap();
        faults::reset();
        b.read(&Key::Event(1), 10).unwrap();
        b.list(Dir::Events).unwrap();
        b.exists(&Key::Event(1)).unwrap();
        b.head(&Key::Event(1)).unwrap();
        let names = faults::steps();
        assert_eq!(
            names,
            [
                "read_open",
                "read_data",
                "read_list",
                "read_exists",
                "read_head"
            ]
        );
        assert!(names.iter().all(|n| faults::is_read_step(n)));
        for at in 1..=2 {
            faults::arm(at, FaultMode::Error);
            let r = b.read(&Key::Event(1), 10);
            faults::reset();
            assert!(
                matches!(&r, Err(WoodlotError::Io { source, .. }) if source.to_string().contains("injected fault")),
                "{r:?}"
            );
        }
    }

    #[test]
    fn without_locking_two_writers_do_not_exclude_each_other() {
        let t = TempDir::new("nolock");
        let b = LocalBackend {
            locking: false,
            ..backend(&t)
        };
        let _g = b.lock().unwrap();
        let b2 = b.clone();
        within(10, move || drop(b2.lock().unwrap()));
        assert!(!t.0.join("LOCK").exists(), "no lock file either");
    }

    /// The part of [`a_read_only_store_reads_and_reports_read_only`] that runs as another user:
    /// run only by that test (as uid 65534 when the tests run as root).
    #[test]
    #[ignore = "run by a_read_only_store_reads_and_reports_read_only"]
    fn read_only_child() {
        let Ok(root) = std::env::var("WOODLOT_TEST_RO_ROOT") else {
            return;
        };
        let b = LocalBackend::new(PathBuf::from(root)).unwrap();
        assert_eq!(b.read(&Key::Event(1), 10).unwrap().unwrap(), b"e");
        assert_eq!(b.list(Dir::Events).unwrap().len(), 1);
        let expect_lock = std::env::var("WOODLOT_TEST_RO_EXPECT").unwrap();
        match (b.lock_or_read_only().unwrap(), expect_lock.as_str()) {
            (WriterLock::ReadOnly { reason }, "read-only") => {
                assert!(reason.contains("LOCK"), "{reason}");
                assert!(b.lock().is_err());
            }
            (WriterLock::Held(_), "held") => {}
            (got, want) => panic!("{got:?}, expected {want}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_store_reads_and_reports_read_only() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        // SAFETY: geteuid has no preconditions.
        let root_user = unsafe { libc::geteuid() } == 0;
        for expect in ["read-only", "held"] {
            let t = TempDir::new("ro");
            let b = backend(&t);
            b.create_new(&Key::Event(1), b"e").unwrap();
            if expect == "held" {
                // LOCK exists but is not writable for the reader: locked read-only.
                drop(b.lock().unwrap());
                fs::set_permissions(t.0.join("LOCK"), fs::Permissions::from_mode(0o444)).unwrap();
            }
            fs::set_permissions(&t.0, fs::Permissions::from_mode(0o555)).unwrap();
            let status = if root_user {
                // Root may write anywhere: read as `nobody` instead.
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", "store::backend::local::tests::read_only_child"])
                    .args(["--ignored", "--quiet", "--test-threads=1"])
                    .env("WOODLOT_TEST_RO_ROOT", &t.0)
                    .env("WOODLOT_TEST_RO_EXPECT", expect)
                    .uid(65534)
                    .gid(65534)
                    .status()
                    .unwrap()
            } else {
                std::env::set_var("WOODLOT_TEST_RO_ROOT", &t.0);
                std::env::set_var("WOODLOT_TEST_RO_EXPECT", expect);
                read_only_child();
                std::process::ExitStatus::default()
            };
            fs::set_permissions(&t.0, fs::Permissions::from_mode(0o755)).unwrap();
            assert!(status.success(), "{expect}: {status:?}");
        }
    }

    #[test]
    fn lock_excludes_other_threads() {
        let t = TempDir::new("lock");
        let b = backend(&t);
        let g = b.lock().unwrap();
        let b2 = b.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let _g = b2.lock().unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(g);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        h.join().unwrap();
    }
}
