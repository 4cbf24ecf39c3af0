//! Opening a store by location: a local directory, or `s3://bucket/prefix` on object storage.

use crate::error::{Result, WoodlotError};
use crate::store::store::Store;

/// The scheme of `location` if it is a URL (`s3://...`), `None` for a path.
pub fn url_scheme(location: &str) -> Option<&str> {
    let (scheme, _) = location.split_once("://")?;
    let plain = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    plain.then_some(scheme)
}

impl Store {
    /// Opens (creating if needed) the store at `location`: `s3://bucket/prefix` with
    /// `storage_options` (over the `AWS_*` environment variables) on S3-compatible object
    /// storage, anything else a local directory (which takes no options).
    pub fn open_location(location: &str, storage_options: &[(String, String)]) -> Result<Self> {
        match url_scheme(location) {
            Some("s3") => Self::open_s3(location, storage_options),
            Some(other) => Err(WoodlotError::input(format!(
                "{other}:// stores are not supported; use s3://bucket/prefix or a local directory"
            ))),
            None if !storage_options.is_empty() => Err(WoodlotError::input(format!(
                "storage_options apply to s3:// stores only, and {location:?} is a local directory"
            ))),
            None => Self::open(location),
        }
    }

    #[cfg(feature = "s3")]
    fn open_s3(url: &str, storage_options: &[(String, String)]) -> Result<Self> {
        let backend = crate::store::object::ObjectBackend::new(url, storage_options)?;
        Self::with_backend(Box::new(backend))
    }

    #[cfg(not(feature = "s3"))]
    fn open_s3(url: &str, _storage_options: &[(String, String)]) -> Result<Self> {
        Err(WoodlotError::input(format!(
            "{url}: this woodlot was built without object storage (the `s3` cargo feature)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::tests::TempDir;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn local_paths_open_locally_and_refuse_options() {
        let t = TempDir::new("open-local");
        let dir = t.0.join("models");
        let s = Store::open_location(dir.to_str().unwrap(), &[]).unwrap();
        assert_eq!(s.location(), dir.display().to_string());
        assert!(matches!(
            Store::open_location(dir.to_str().unwrap(), &opts(&[("region", "x")])),
            Err(WoodlotError::InvalidInput(m)) if m.contains("s3:// stores only")
        ));
    }

    #[test]
    fn other_schemes_and_bad_urls_are_refused() {
        assert!(matches!(
            Store::open_location("gs://bucket/p", &[]),
            Err(WoodlotError::InvalidInput(m)) if m.contains("not supported")
        ));
        assert!(matches!(
            Store::open_location("s3://", &[]),
            Err(WoodlotError::InvalidInput(_))
        ));
    }

    #[test]
    fn schemes_are_recognised_but_paths_are_not_urls() {
        assert_eq!(url_scheme("s3://b/p"), Some("s3"));
        assert_eq!(url_scheme("gs://b"), Some("gs"));
        assert_eq!(url_scheme("models"), None);
        assert_eq!(url_scheme("/tmp/a://b"), None);
        assert_eq!(url_scheme("./x://y"), None);
    }

    #[cfg(feature = "s3")]
    #[test]
    fn an_unreachable_endpoint_fails_fast_with_a_clear_error() {
        // Port 9 on loopback ("discard"): nothing listens there in a test environment, so the
        // connection is refused at once. No retries, short timeouts.
        let started = std::time::Instant::now();
        let err = Store::open_location(
            "s3://bucket/prefix",
            &opts(&[
                ("endpoint_url", "http://127.0.0.1:9"),
                ("allow_http", "true"),
                ("region", "us-east-1"),
                ("access_key_id", "test"),
                ("secret_access_key", "test"),
                ("connect_timeout", "1"),
                ("timeout", "2"),
                ("max_retries", "0"),
            ]),
        )
        .unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let msg = err.to_string();
        assert!(matches!(err, WoodlotError::Io { .. }), "{err:?}");
        assert!(msg.contains("s3://bucket/prefix/FORMAT"), "{msg}");
        assert!(msg.contains("http://127.0.0.1:9"), "{msg}");
        assert!(msg.contains("endpoint_url"), "{msg}");
    }

    #[cfg(feature = "s3")]
    #[test]
    fn unknown_options_are_refused_before_any_request() {
        assert!(matches!(
            Store::open_location("s3://b/p", &opts(&[("endpiont", "http://127.0.0.1:9")])),
            Err(WoodlotError::InvalidInput(m)) if m.contains("unknown storage option")
        ));
    }
}
