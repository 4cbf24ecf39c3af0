//! Picking a backend from a location: a local directory, or `s3://bucket/prefix` on object
//! storage. `Store::open_location` (in `crate::store::open`) opens a store on the result.

use crate::error::{Result, WoodlotError};
use crate::store::backend::local::LocalBackend;
use crate::store::backend::Backend;

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

/// The backend for `location`: `s3://bucket/prefix` with `storage_options` (over the `AWS_*`
/// environment variables) on S3-compatible object storage, anything else a local directory
/// (which takes no options). No request is made yet.
pub fn backend_for(
    location: &str,
    storage_options: &[(String, String)],
) -> Result<Box<dyn Backend>> {
    match url_scheme(location) {
        Some("s3") => s3_backend(location, storage_options),
        Some(other) => Err(WoodlotError::input(format!(
            "{other}:// stores are not supported; use s3://bucket/prefix or a local directory"
        ))),
        None if !storage_options.is_empty() => Err(WoodlotError::input(format!(
            "storage_options apply to s3:// stores only, and {location:?} is a local directory"
        ))),
        None => Ok(Box::new(LocalBackend::new(location)?)),
    }
}

#[cfg(feature = "s3")]
fn s3_backend(url: &str, storage_options: &[(String, String)]) -> Result<Box<dyn Backend>> {
    let backend = crate::store::backend::object::ObjectBackend::new(url, storage_options)?;
    Ok(Box::new(backend))
}

#[cfg(not(feature = "s3"))]
fn s3_backend(url: &str, _storage_options: &[(String, String)]) -> Result<Box<dyn Backend>> {
    Err(WoodlotError::input(format!(
        "{url}: this woodlot was built without object storage (the `s3` cargo feature)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_recognised_but_paths_are_not_urls() {
        assert_eq!(url_scheme("s3://b/p"), Some("s3"));
        assert_eq!(url_scheme("gs://b"), Some("gs"));
        assert_eq!(url_scheme("models"), None);
        assert_eq!(url_scheme("/tmp/a://b"), None);
        assert_eq!(url_scheme("./x://y"), None);
    }
}
