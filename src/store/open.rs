//! Opening a store by location: a local directory, or `s3://bucket/prefix` on object storage.
//! Which backend a location means is the storage layer's call ([`backend_for`]).

use crate::error::Result;
use crate::store::backend::open::backend_for;
use crate::store::store::Store;

impl Store {
    /// Opens (creating if needed) the store at `location`: `s3://bucket/prefix` with
    /// `storage_options` (over the `AWS_*` environment variables) on S3-compatible object
    /// storage, anything else a local directory (which takes no options).
    pub fn open_location(location: &str, storage_options: &[(String, String)]) -> Result<Self> {
        Self::with_backend(backend_for(location, storage_options)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WoodlotError;
    use crate::store::testutil::{opts, TempDir};

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
