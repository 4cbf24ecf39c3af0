//! The object-storage backend: the store protocol on S3 (or any S3-compatible service) through
//! the `object_store` crate.
//!
//! - Create-only writes (version manifests, events, blobs, `FORMAT`) are `PUT` with
//!   `If-None-Match: *` (`PutMode::Create`). A `412`/`409` answer means the key is taken, which
//!   is the same "someone else won" (`false`) the local backend's `link(2)` `EEXIST` gives, so
//!   N writers still get unique, gapless numbers and a stale promotion still gets a conflict.
//!   One subtlety: if our own `PUT` landed but its answer was lost and the client retried, the
//!   retry sees its own object. So a "taken" key is read back: the same bytes mean this call
//!   wrote them (manifests and events carry time, host and pid, so another writer's never match).
//! - `ACTIVE` (the hint) and blob repairs are plain `PUT`s, atomic per object on S3.
//! - Reads are `GET`/`HEAD`/`LIST`; the size from the response headers is checked against the
//!   record's bound before any body is read.
//! - There is no lock ([`Backend::lock`] holds nothing): the create-only writes make concurrent
//!   use correct. gc stays safe through its grace period on each object's last-modified time: a
//!   save writes its blobs (or, reusing one, re-`PUT`s it, which refreshes last-modified) before
//!   its manifest, so gc only removes unreferenced blobs older than the grace period, which must
//!   exceed the longest save (default: an hour). What the grace period cannot cover without a
//!   lock: a save that reuses the blob of a *deleted* version while a gc run that already listed
//!   that blob as old is deleting it. `verify()` reports such a version, and saving the same
//!   model again restores the blob. Run gc from one place, at quiet times, on object storage.
//!
//! Every request runs on a small current-thread tokio runtime owned by the backend (rebuilt,
//! with its HTTP client, in a forked child, which must not share the parent's sockets). Network
//! and service errors become [`WoodlotError::Io`] (an `OSError` in Python) or, for a missing
//! bucket, [`WoodlotError::Store`], naming the bucket, key and endpoint and what to check.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use object_store::aws::AmazonS3;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Result, WoodlotError};
use crate::store::backend::faults::step;
use crate::store::backend::s3config::{self, S3Location, S3Settings};
use crate::store::backend::{is_canonical, Backend, Entry, LockGuard, ObjectMeta};
use crate::store::layout::{Dir, Key};

/// The runtime and client of one process.
struct Client {
    pid: u32,
    rt: tokio::runtime::Runtime,
    s3: AmazonS3,
}

/// A store under `s3://bucket/prefix`.
pub struct ObjectBackend {
    settings: S3Settings,
    client: Mutex<Option<Arc<Client>>>,
}

impl fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the builder: it holds credentials.
        f.debug_struct("ObjectBackend")
            .field("location", &self.settings.location.url())
            .field("endpoint", &self.settings.endpoint)
            .finish()
    }
}

/// What a failed request was doing, for messages.
#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    Check,
    Create,
    Replace,
    Remove,
    Touch,
    List,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Read => "reading",
            Op::Check => "checking",
            Op::Create => "creating",
            Op::Replace => "replacing",
            Op::Remove => "removing",
            Op::Touch => "refreshing",
            Op::List => "listing",
        }
    }
}

impl ObjectBackend {
    /// A backend for `url` (`s3://bucket/prefix`) with `options` over the `AWS_*` environment.
    /// No request is made until the store is used.
    pub fn new(url: &str, options: &[(String, String)]) -> Result<Self> {
        let location = S3Location::parse(url)?;
        Self::with_settings(s3config::settings(location, options)?)
    }

    /// A backend from prepared settings.
    pub fn with_settings(settings: S3Settings) -> Result<Self> {
        let backend = Self {
            settings,
            client: Mutex::new(None),
        };
        backend.client()?; // surface configuration errors now
        Ok(backend)
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &str {
        &self.settings.endpoint
    }

    /// This process's client, built on first use (and again after a fork).
    fn client(&self) -> Result<Arc<Client>> {
        let pid = std::process::id();
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref() {
            if c.pid == pid {
                return Ok(c.clone());
            }
            // Inherited across fork: its sockets and event queue belong to the parent. Leak it
            // rather than run any of its teardown here.
            if let Some(old) = slot.take() {
                std::mem::forget(old);
            }
        }
        let s3 = self.settings.builder.clone().build().map_err(|e| {
            WoodlotError::input(format!(
                "cannot configure S3 access to {}: {e}",
                self.settings.location.url()
            ))
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| WoodlotError::io("starting the I/O runtime for object storage", e))?;
        let c = Arc::new(Client { pid, rt, s3 });
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs one request to completion on this process's runtime.
    fn run<T, F>(&self, make: impl FnOnce(AmazonS3) -> F) -> Result<Result<T, object_store::Error>>
    where
        F: Future<Output = Result<T, object_store::Error>> + Send,
        T: Send,
    {
        let c = self.client()?;
        let fut = make(c.s3.clone());
        if tokio::runtime::Handle::try_current().is_ok() {
            // Called from inside someone's async runtime (a Rust user's): blocking it on our
            // runtime would panic, so block a helper thread instead.
            Ok(std::thread::scope(|s| {
                s.spawn(|| c.rt.block_on(fut))
                    .join()
                    .unwrap_or_else(|_| Err(generic("the request thread panicked")))
            }))
        } else {
            Ok(c.rt.block_on(fut))
        }
    }

    fn path(&self, rel: &str) -> Path {
        let p = &self.settings.location.prefix;
        if p.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{p}/{rel}"))
        }
    }

    fn key_path(&self, key: &Key) -> Path {
        // Keys render only store-assigned numbers and validated digests (see `layout`).
        self.path(&key.path())
    }

    fn url_of(&self, rel: &str) -> String {
        let base = self.settings.location.url();
        if rel.is_empty() {
            base
        } else {
            format!("{base}/{rel}")
        }
    }

    /// Maps an `object_store` error to woodlot's, naming what, where and what to check.
    fn error(&self, op: Op, rel: &str, e: object_store::Error) -> WoodlotError {
        map_error(
            op.verb(),
            &self.url_of(rel),
            &self.settings.location.bucket,
            &self.settings.endpoint,
            e,
        )
    }

    async fn read_async(
        s3: AmazonS3,
        path: Path,
        max_len: u64,
    ) -> Result<Result<Vec<u8>, u64>, object_store::Error> {
        let got = s3.get_opts(&path, GetOptions::default()).await?;
        if got.meta.size > max_len {
            return Ok(Err(got.meta.size));
        }
        Ok(Ok(got.bytes().await?.to_vec()))
    }

    /// `GET`: the bytes, `None` if absent; the size is checked before the body is read.
    fn get(&self, key: &Key, max_len: u64, op: Op) -> Result<Option<Vec<u8>>> {
        let rel = key.path();
        let path = self.key_path(key);
        step("read_s3_get")
            .map_err(|e| WoodlotError::io(format!("reading {}", self.url_of(&rel)), e))?;
        match self.run(|s3| Self::read_async(s3, path, max_len))? {
            Ok(Ok(bytes)) => {
                if bytes.len() as u64 > max_len {
                    return Err(WoodlotError::corrupt(format!(
                        "{rel} grew past {max_len} bytes"
                    )));
                }
                Ok(Some(bytes))
            }
            Ok(Err(size)) => Err(WoodlotError::corrupt(format!(
                "{rel} is {size} bytes, more than the {max_len} such a record can be"
            ))),
            Err(e @ object_store::Error::NotFound { .. }) if !is_no_such_bucket(&e) => Ok(None),
            Err(e) => Err(self.error(op, &rel, e)),
        }
    }

    /// `PUT`; the outer error is ours (no runtime), the inner one the request's.
    fn put(
        &self,
        key: &Key,
        bytes: &[u8],
        mode: PutMode,
    ) -> Result<Result<(), object_store::Error>> {
        let path = self.key_path(key);
        let payload = PutPayload::from(bytes.to_vec());
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        Ok(self
            .run(|s3| async move { s3.put_opts(&path, payload, opts).await })?
            .map(|_| ()))
    }

    fn list_prefix(&self, rel: &str) -> Result<object_store::ListResult> {
        let prefix = if rel.is_empty() && self.settings.location.prefix.is_empty() {
            None
        } else {
            Some(self.path(rel))
        };
        step("read_s3_list")
            .map_err(|e| WoodlotError::io(format!("listing {}", self.url_of(rel)), e))?;
        self.run(|s3| async move { s3.list_with_delimiter(prefix.as_ref()).await })?
            .map_err(|e| self.error(Op::List, rel, e))
    }
}

fn generic(message: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: message.to_string().into(),
    }
}

/// Whether an error is S3's `NoSuchBucket` (a 404 that is not about the key).
fn is_no_such_bucket(e: &object_store::Error) -> bool {
    chain_text(e).contains("NoSuchBucket")
}

/// The error and all its sources, as one string.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The transport failure underneath an error, if it is one.
fn transport_kind(e: &(dyn std::error::Error + 'static)) -> Option<HttpErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        cur = err.source();
    }
    None
}

/// Maps an `object_store` error for `verb` on `url` to woodlot's error, with what to check.
fn map_error(
    verb: &str,
    url: &str,
    bucket: &str,
    endpoint: &str,
    e: object_store::Error,
) -> WoodlotError {
    use object_store::Error as E;
    let detail = chain_text(&e);
    if is_no_such_bucket(&e) {
        return WoodlotError::Store(format!(
            "bucket {bucket:?} does not exist at {endpoint} ({verb} {url}): create it first, or \
             check the bucket name in the URL and the endpoint_url/region options"
        ));
    }
    let (kind, hint) = match &e {
        E::NotFound { .. } => (io::ErrorKind::NotFound, "it is missing"),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => (
            io::ErrorKind::PermissionDenied,
            "access denied: check access_key_id and secret_access_key (or the AWS_* variables), \
             the region, and the bucket's policy",
        ),
        E::NotImplemented { .. } | E::NotSupported { .. } => (
            io::ErrorKind::Unsupported,
            "this S3 service lacks a feature the store needs (conditional PUT with \
             If-None-Match: *); check the conditional_put option",
        ),
        _ => match transport_kind(&e) {
            Some(HttpErrorKind::Connect) => (
                io::ErrorKind::ConnectionRefused,
                "cannot connect: check endpoint_url (and allow_http for an http:// endpoint) and \
                 that the service is running and reachable",
            ),
            Some(HttpErrorKind::Timeout) => (
                io::ErrorKind::TimedOut,
                "the request timed out: check endpoint_url and the network, or raise the timeout \
                 option",
            ),
            Some(_) => (
                io::ErrorKind::Other,
                "the connection failed: check endpoint_url, allow_http and the network",
            ),
            None => (
                io::ErrorKind::Other,
                "the S3 service refused the request: check the endpoint_url, region and \
                 credentials",
            ),
        },
    };
    WoodlotError::io(
        format!("{verb} {url} at {endpoint}: {hint}"),
        io::Error::new(kind, detail),
    )
}

impl Backend for ObjectBackend {
    fn location(&self) -> String {
        self.settings.location.url()
    }

    fn list_root(&self) -> Result<Vec<String>> {
        let listed = self.list_prefix("")?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .chain(listed.objects.iter().map(|o| &o.location))
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn ensure_dirs(&self) -> Result<()> {
        Ok(()) // prefixes need no creating
    }

    fn read(&self, key: &Key, max_len: u64) -> Result<Option<Vec<u8>>> {
        self.get(key, max_len, Op::Read)
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.head(key)?.is_some())
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        let path = self.key_path(key);
        step("read_s3_head")
            .map_err(|e| WoodlotError::io(format!("checking {}", self.url_of(&key.path())), e))?;
        match self.run(|s3| async move { s3.head(&path).await })? {
            Ok(meta) => Ok(Some(object_meta(&meta))),
            Err(e @ object_store::Error::NotFound { .. }) if !is_no_such_bucket(&e) => Ok(None),
            Err(e) => Err(self.error(Op::Check, &key.path(), e)),
        }
    }

    fn create_new(&self, key: &Key, bytes: &[u8]) -> Result<bool> {
        step("s3_put_create")
            .map_err(|e| WoodlotError::io(format!("creating {}", self.url_of(&key.path())), e))?;
        match self.put(key, bytes, PutMode::Create)? {
            Ok(()) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                // Taken; by us if a retried PUT found its own first attempt (same bytes).
                let mine = self
                    .get(key, bytes.len() as u64, Op::Read)
                    .map(|got| got.as_deref() == Some(bytes))
                    .unwrap_or(false);
                Ok(mine)
            }
            Err(e) => Err(self.error(Op::Create, &key.path(), e)),
        }
    }

    fn replace(&self, key: &Key, bytes: &[u8]) -> Result<()> {
        step("s3_put")
            .map_err(|e| WoodlotError::io(format!("replacing {}", self.url_of(&key.path())), e))?;
        self.put(key, bytes, PutMode::Overwrite)?
            .map_err(|e| self.error(Op::Replace, &key.path(), e))
    }

    fn remove(&self, key: &Key) -> Result<bool> {
        if !self.exists(key)? {
            return Ok(false);
        }
        step("s3_delete")
            .map_err(|e| WoodlotError::io(format!("removing {}", self.url_of(&key.path())), e))?;
        let path = self.key_path(key);
        match self.run(|s3| async move { s3.delete(&path).await })? {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(Op::Remove, &key.path(), e)),
        }
    }

    fn touch(&self, key: &Key) -> Result<()> {
        // S3 cannot copy an object onto itself without changing it, so refreshing its
        // last-modified time means writing the same bytes again.
        let rel = key.path();
        let bytes = self.get(key, u64::MAX, Op::Touch)?.ok_or_else(|| {
            WoodlotError::io(
                format!("refreshing {}", self.url_of(&rel)),
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "it vanished (removed by gc?); save again",
                ),
            )
        })?;
        step("s3_touch")
            .map_err(|e| WoodlotError::io(format!("refreshing {}", self.url_of(&rel)), e))?;
        self.put(key, &bytes, PutMode::Overwrite)?
            .map_err(|e| self.error(Op::Touch, &rel, e))
    }

    fn list(&self, dir: Dir) -> Result<Vec<Entry>> {
        let listed = self.list_prefix(dir.name())?;
        let now = chrono_now();
        let mut out: Vec<Entry> = listed
            .objects
            .into_iter()
            .filter_map(|o| {
                let name = o.location.filename()?.to_string();
                if !is_canonical(dir, &name) {
                    return None; // a stray `7.json`, a foreign object: not a record
                }
                let age = (now - o.last_modified.timestamp_millis()) as f64 / 1000.0;
                let meta = object_meta(&o);
                Some(Entry {
                    name,
                    size: o.size,
                    // Clocks differ between us and the service: never negative.
                    age_seconds: Some(age.max(0.0)),
                    last_modified: meta.last_modified,
                    etag: meta.etag,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn lock(&self) -> Result<LockGuard> {
        // No lock on object storage: create-only writes keep it correct (see the module docs).
        Ok(Box::new(()))
    }
}

/// The store's view of an object's metadata; `last_modified` is the service's clock.
fn object_meta(o: &object_store::ObjectMeta) -> ObjectMeta {
    let ms = o.last_modified.timestamp_millis();
    let nanos = o.last_modified.timestamp_subsec_nanos() % 1_000_000;
    let last_modified = u64::try_from(ms).ok().map(|ms| {
        std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(ms)
            + std::time::Duration::from_nanos(u64::from(nanos))
    });
    ObjectMeta {
        size: o.size,
        last_modified,
        etag: o.e_tag.clone(),
        version: o.version.clone(),
    }
}

/// Now, in milliseconds since the Unix epoch.
fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::aws::AmazonS3Builder;

    fn map(e: object_store::Error) -> WoodlotError {
        map_error(
            "reading",
            "s3://bkt/p/FORMAT",
            "bkt",
            "http://127.0.0.1:9",
            e,
        )
    }

    fn io_kind(e: &WoodlotError) -> io::ErrorKind {
        match e {
            WoodlotError::Io { source, .. } => source.kind(),
            other => panic!("not an I/O error: {other:?}"),
        }
    }

    #[test]
    fn a_missing_bucket_is_a_store_error_naming_it() {
        let e = map(object_store::Error::NotFound {
            path: "p/FORMAT".into(),
            source: "<Error><Code>NoSuchBucket</Code></Error>".into(),
        });
        match e {
            WoodlotError::Store(m) => {
                assert!(m.contains("\"bkt\" does not exist"), "{m}");
                assert!(m.contains("http://127.0.0.1:9"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn denied_requests_name_the_credentials() {
        let e = map(object_store::Error::PermissionDenied {
            path: "p/FORMAT".into(),
            source: "403".into(),
        });
        assert_eq!(io_kind(&e), io::ErrorKind::PermissionDenied);
        let m = e.to_string();
        assert!(
            m.contains("s3://bkt/p/FORMAT") && m.contains("access_key_id"),
            "{m}"
        );
    }

    #[test]
    fn transport_failures_name_the_endpoint_and_what_to_check() {
        let connect = HttpError::new(HttpErrorKind::Connect, io::Error::other("refused"));
        let e = map(object_store::Error::Generic {
            store: "S3",
            source: Box::new(connect),
        });
        assert_eq!(io_kind(&e), io::ErrorKind::ConnectionRefused);
        let m = e.to_string();
        assert!(
            m.contains("http://127.0.0.1:9") && m.contains("endpoint_url"),
            "{m}"
        );
        assert!(m.contains("refused"), "{m}");

        let timeout = HttpError::new(HttpErrorKind::Timeout, io::Error::other("slow"));
        let e = map(object_store::Error::Generic {
            store: "S3",
            source: Box::new(timeout),
        });
        assert_eq!(io_kind(&e), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("timeout option"));

        let other = map(generic("500 Internal Error"));
        assert_eq!(io_kind(&other), io::ErrorKind::Other);
        assert!(other.to_string().contains("500 Internal Error"));
    }

    #[test]
    fn keys_live_under_the_prefix() {
        let settings = |url: &str| {
            s3config::settings_from(
                AmazonS3Builder::new().with_region("us-east-1"),
                S3Location::parse(url).unwrap(),
                &[],
            )
            .unwrap()
        };
        let b = ObjectBackend::with_settings(settings("s3://bkt/team/a")).unwrap();
        assert_eq!(
            b.key_path(&Key::Manifest(3)).as_ref(),
            "team/a/versions/0000000003.json"
        );
        assert_eq!(b.url_of("ACTIVE"), "s3://bkt/team/a/ACTIVE");
        assert_eq!(b.location(), "s3://bkt/team/a");
        let root = ObjectBackend::with_settings(settings("s3://bkt")).unwrap();
        assert_eq!(root.key_path(&Key::Hint).as_ref(), "ACTIVE");
        assert!(!format!("{b:?}").contains("secret"));
    }
}
