//! The local-filesystem backend: create-only writes by temp file + fsync + hard link, atomic
//! replacement by rename, and an advisory `File::lock`.
//!
//! Why a hard link rather than `O_EXCL` on the final name: `link(2)` fails with `EEXIST` if the
//! name is taken, exactly like `O_EXCL`, but the file it publishes was already written and
//! fsynced under a temporary name, so a reader can never open a half-written record, and a crash
//! leaves at most a whole temp file behind (debris that gc removes). The directory holding the
//! new name is fsynced before the call returns, so a completed write survives power loss.
//!
//! Every step goes through [`faults::step`] so tests can fail or crash at each one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, WoodlotError};
use crate::store::backend::faults::step;
use crate::store::backend::{Backend, Entry, LockGuard};
use crate::store::layout::{Dir, Key};

/// Counter that makes temp names unique within a process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
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
        Ok(Self { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &Key) -> PathBuf {
        // Keys render only store-assigned numbers and validated digests (see `layout`).
        self.root.join(key.path())
    }

    /// Writes `bytes` to a fresh temp file and fsyncs it; on any failure the temp file is removed.
    fn write_temp(&self, bytes: &[u8]) -> io::Result<PathBuf> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{nanos}-{n}.tmp", std::process::id());
        let path = self.root.join(Dir::Tmp.name()).join(name);
        step("create_temp")?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let written = (|| {
            step("write_temp")?;
            file.write_all(bytes)?;
            step("fsync_temp")?;
            file.sync_all()
        })();
        drop(file);
        match written {
            Ok(()) => Ok(path),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }

    fn fsync_dir_of(&self, path: &Path) -> io::Result<()> {
        step("fsync_dir")?;
        #[cfg(unix)]
        {
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        #[cfg(not(unix))]
        let _ = path;
        Ok(())
    }

    fn io_err(&self, what: &str, key: &Key, e: io::Error) -> WoodlotError {
        WoodlotError::io(
            format!("{what} {} in store {}", key.path(), self.root.display()),
            e,
        )
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list_root(&self) -> Result<Vec<String>> {
        let rd = fs::read_dir(&self.root)
            .map_err(|e| WoodlotError::io(format!("listing {}", self.root.display()), e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry
                .map_err(|e| WoodlotError::io(format!("listing {}", self.root.display()), e))?;
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    fn ensure_dirs(&self) -> Result<()> {
        for dir in Dir::ALL {
            let path = self.root.join(dir.name());
            if !path.is_dir() {
                let made = step("mkdir").and_then(|_| fs::create_dir(&path));
                match made {
                    Ok(()) => {
                        self.fsync_dir_of(&path).map_err(|e| {
                            WoodlotError::io(format!("syncing {}", self.root.display()), e)
                        })?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(WoodlotError::io(format!("creating {}", path.display()), e));
                    }
                }
            }
        }
        Ok(())
    }

    fn read(&self, key: &Key, max_len: u64) -> Result<Option<Vec<u8>>> {
        let path = self.path(key);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_err("opening", key, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| self.io_err("reading", key, e))?
            .len();
        if len > max_len {
            return Err(WoodlotError::corrupt(format!(
                "{} is {len} bytes, more than the {max_len} such a record can be",
                key.path()
            )));
        }
        let mut buf = Vec::with_capacity(len as usize);
        // `take` bounds the read even if the file grows underneath us.
        (&mut file)
            .take(max_len + 1)
            .read_to_end(&mut buf)
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
        match fs::symlink_metadata(self.path(key)) {
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
        let linked = step("link").and_then(|_| fs::hard_link(&tmp, &dest));
        // The temp name has served its purpose either way; if removing it fails it is debris.
        let _ = step("remove_temp").and_then(|_| fs::remove_file(&tmp));
        match linked {
            Ok(()) => {
                self.fsync_dir_of(&dest)
                    .map_err(|e| self.io_err("syncing directory of", key, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
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
        self.fsync_dir_of(&dest)
            .map_err(|e| self.io_err("syncing directory of", key, e))
    }

    fn remove(&self, key: &Key) -> Result<bool> {
        let path = self.path(key);
        match step("remove").and_then(|_| fs::remove_file(&path)) {
            Ok(()) => {
                self.fsync_dir_of(&path)
                    .map_err(|e| self.io_err("syncing directory of", key, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_err("removing", key, e)),
        }
    }

    fn touch(&self, key: &Key) -> Result<()> {
        let path = self.path(key);
        let done = step("touch").and_then(|_| {
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_modified(SystemTime::now())
        });
        done.map_err(|e| self.io_err("touching", key, e))
    }

    fn list(&self, dir: Dir) -> Result<Vec<Entry>> {
        let path = self.root.join(dir.name());
        let rd = match fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WoodlotError::io(format!("listing {}", path.display()), e)),
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for entry in rd {
            let entry =
                entry.map_err(|e| WoodlotError::io(format!("listing {}", path.display()), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not UTF-8: not ours, and not a key
            };
            // A file removed between readdir and stat is simply gone.
            let Ok(meta) = entry.metadata() else { continue };
            let age_seconds = meta.modified().ok().map(|m| {
                now.duration_since(m)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0)
            });
            out.push(Entry {
                name,
                size: meta.len(),
                age_seconds,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn lock(&self) -> Result<LockGuard> {
        let path = self.path(&Key::Lock);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| WoodlotError::io(format!("opening lock file {}", path.display()), e))?;
        // flock(2): per open file, so threads holding separate opens exclude each other too, and
        // the kernel releases it when the holder dies, however it dies.
        file.lock()
            .map_err(|e| WoodlotError::io(format!("locking {}", path.display()), e))?;
        Ok(Box::new(file))
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
    fn listing_skips_foreign_names_only_at_the_key_level() {
        let t = TempDir::new("list");
        let b = backend(&t);
        let d = Digest::of(b"blob");
        b.create_new(&Key::Blob(d.clone()), b"blob").unwrap();
        fs::write(t.0.join("blobs").join("notes.txt"), b"hi").unwrap();
        let names: Vec<_> = b
            .list(Dir::Blobs)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names.len(), 2);
        let keys: Vec<_> = names
            .iter()
            .filter_map(|n| Key::from_listing(Dir::Blobs, n))
            .collect();
        assert_eq!(keys, vec![Key::Blob(d)]);
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
