//! Where a store on S3-compatible object storage lives and how to reach it: the `s3://bucket/prefix`
//! URL and the `storage_options` a user passes (on top of the standard `AWS_*` environment
//! variables, which are read first, so explicit options win).
//!
//! Options are the `object_store` crate's S3 keys (`endpoint_url`, `region`, `access_key_id`,
//! `secret_access_key`, `session_token`, `allow_http`, `timeout`, `connect_timeout`, ...; an
//! `aws_` prefix is accepted), plus two of woodlot's own for the retry policy: `max_retries` and
//! `retry_timeout`. Durations may be plain numbers of seconds (`2`, `0.5`) or humantime strings
//! (`"500ms"`, `"30s"`). Unknown keys are refused with the list of common ones, so a typo never
//! silently falls back to a default endpoint.

use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{BackoffConfig, RetryConfig};

use crate::error::{Result, WoodlotError};

/// Retries woodlot allows by default: few, so that a wrong endpoint fails in about a second
/// rather than the three minutes of `object_store`'s own default.
pub const DEFAULT_MAX_RETRIES: usize = 3;
/// Longest time spent retrying one request by default.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// Keys that take a duration.
const DURATION_KEYS: [&str; 6] = [
    "timeout",
    "connect_timeout",
    "read_timeout",
    "pool_idle_timeout",
    "http2_keep_alive_timeout",
    "http2_keep_alive_interval",
];

/// The options most people need, named in error messages.
const COMMON_KEYS: &str = "endpoint_url, region, access_key_id, secret_access_key, session_token, \
                           allow_http, timeout, connect_timeout, max_retries, retry_timeout";

/// A bucket and a key prefix inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket name.
    pub bucket: String,
    /// The prefix under which the store's records live, without leading or trailing `/`;
    /// empty for the bucket's root.
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket` or `s3://bucket/some/prefix` (a trailing `/` is ignored).
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            let shown: String = url
                .chars()
                .take(200)
                .flat_map(char::escape_default)
                .collect();
            WoodlotError::input(format!(
                "\"{shown}\" is not a valid store URL: {why} (expected s3://bucket/prefix)"
            ))
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is empty"));
        }
        if bucket.len() > 255
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(bad(
                "a bucket name has only letters, digits, '.', '-' and '_'",
            ));
        }
        if prefix.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad("the prefix holds control characters or '\\'"));
        }
        if prefix.contains(['?', '#']) {
            return Err(bad(
                "query strings and fragments are not part of a store URL",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            Path::parse(prefix).map_err(|_| {
                bad("the prefix has an empty, '.' or '..' segment (e.g. a//b or a/../b)")
            })?;
        }
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The canonical URL.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// A duration given as seconds (`"2"`, `"0.5"`) or in humantime (`"500ms"`), as humantime.
fn duration_value(key: &str, value: &str) -> Result<String> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
            return Err(WoodlotError::input(format!(
                "storage option {key}: {value:?} is not a duration (seconds >= 0)"
            )));
        }
        return Ok(format!("{}ms", (secs * 1000.0).round() as u64));
    }
    Ok(v.to_string())
}

/// Parses a duration for woodlot's own keys.
fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    let v = duration_value(key, value)?;
    let bad = || {
        WoodlotError::input(format!(
            "storage option {key}: {value:?} is not a duration (seconds, or e.g. \"500ms\", \"30s\")"
        ))
    };
    let (digits, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.saturating_mul(60))),
        _ => Err(bad()),
    }
}

/// How to reach a store: the configured client builder, the retry policy and, for messages,
/// where requests go.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Where the store lives.
    pub location: S3Location,
    /// The client builder, ready to `build()`.
    pub builder: AmazonS3Builder,
    /// The endpoint requests go to, for messages.
    pub endpoint: String,
}

/// Combines the `AWS_*` environment variables with `options` for `location`.
pub fn settings(location: S3Location, options: &[(String, String)]) -> Result<S3Settings> {
    settings_from(AmazonS3Builder::from_env(), location, options)
}

/// As [`settings`], starting from a given builder (tests start from an empty one).
pub fn settings_from(
    mut builder: AmazonS3Builder,
    location: S3Location,
    options: &[(String, String)],
) -> Result<S3Settings> {
    let mut retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: DEFAULT_MAX_RETRIES,
        retry_timeout: DEFAULT_RETRY_TIMEOUT,
    };
    for (key, value) in options {
        let k = key.trim().to_ascii_lowercase();
        let k = k.strip_prefix("aws_").unwrap_or(&k).to_string();
        match k.as_str() {
            "max_retries" => {
                retry.max_retries = value.trim().parse().map_err(|_| {
                    WoodlotError::input(format!(
                        "storage option max_retries: {value:?} is not a whole number"
                    ))
                })?
            }
            "retry_timeout" => retry.retry_timeout = parse_duration(&k, value)?,
            "bucket" | "bucket_name" => {
                return Err(WoodlotError::input(
                    "storage option bucket: the bucket comes from the URL (s3://bucket/prefix)",
                ))
            }
            _ => {
                let config_key: AmazonS3ConfigKey = k.parse().map_err(|_| {
                    WoodlotError::input(format!(
                        "unknown storage option {key:?} (common ones: {COMMON_KEYS})"
                    ))
                })?;
                let value = if DURATION_KEYS.contains(&k.as_str()) {
                    duration_value(&k, value)?
                } else {
                    value.clone()
                };
                builder = builder.with_config(config_key, value);
            }
        }
    }
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint))
        .unwrap_or_else(|| {
            let region = builder
                .get_config_value(&AmazonS3ConfigKey::Region)
                .unwrap_or_else(|| "us-east-1".into());
            format!("AWS S3 ({region})")
        });
    let builder = builder
        .with_bucket_name(location.bucket.clone())
        .with_retry(retry);
    Ok(S3Settings {
        location,
        builder,
        endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::opts;

    #[test]
    fn urls_parse_into_bucket_and_prefix() {
        let l = S3Location::parse("s3://models/team/fraud/").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("models", "team/fraud")
        );
        assert_eq!(l.url(), "s3://models/team/fraud");
        let root = S3Location::parse("s3://models").unwrap();
        assert_eq!(root.prefix, "");
        assert_eq!(root.url(), "s3://models");
        assert_eq!(S3Location::parse("s3://models/").unwrap(), root);
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, why) in [
            ("s3://", "bucket name is empty"),
            ("s3:///x", "bucket name is empty"),
            ("s3://b u/x", "bucket name"),
            ("s3://b/a//c", "empty"),
            ("s3://b/a/../c", "'..'"),
            ("s3://b/a/./c", "'.'"),
            ("s3://b/a\nb", "control"),
            ("s3://b/a?x=1", "query"),
            ("gs://b/a", "s3://"),
        ] {
            match S3Location::parse(url) {
                Err(WoodlotError::InvalidInput(m)) => assert!(m.contains(why), "{url}: {m}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn options_reach_the_builder_and_woodlot_keys_the_retry_policy() {
        let l = S3Location::parse("s3://bkt/p").unwrap();
        let s = settings_from(
            AmazonS3Builder::new(),
            l,
            &opts(&[
                ("endpoint_url", "http://127.0.0.1:9"),
                ("REGION", "eu-west-1"),
                ("aws_access_key_id", "AK"),
                ("secret_access_key", "SK"),
                ("allow_http", "true"),
                ("timeout", "2.5"),
                ("connect_timeout", "500ms"),
                ("max_retries", "0"),
                ("retry_timeout", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:9");
        let b = &s.builder;
        let get = |k: AmazonS3ConfigKey| b.get_config_value(&k);
        assert_eq!(get(AmazonS3ConfigKey::Region).as_deref(), Some("eu-west-1"));
        assert_eq!(get(AmazonS3ConfigKey::AccessKeyId).as_deref(), Some("AK"));
        assert_eq!(get(AmazonS3ConfigKey::Bucket).as_deref(), Some("bkt"));
        let timeout: AmazonS3ConfigKey = "timeout".parse().unwrap();
        assert_eq!(get(timeout).as_deref(), Some("2500ms"));
        let connect: AmazonS3ConfigKey = "connect_timeout".parse().unwrap();
        assert_eq!(get(connect).as_deref(), Some("500ms"));
        // The builder builds (no request is made).
        s.builder.clone().build().unwrap();
    }

    #[test]
    fn unknown_or_malformed_options_are_refused() {
        let l = S3Location::parse("s3://bkt").unwrap();
        for (k, v, why) in [
            ("endpont_url", "http://x", "unknown storage option"),
            ("bucket", "other", "comes from the URL"),
            ("max_retries", "many", "whole number"),
            ("retry_timeout", "soon", "not a duration"),
            ("timeout", "-1", "not a duration"),
        ] {
            match settings_from(AmazonS3Builder::new(), l.clone(), &opts(&[(k, v)])) {
                Err(WoodlotError::InvalidInput(m)) => assert!(m.contains(why), "{k}: {m}"),
                other => panic!("{k}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_default_endpoint_is_named_by_region() {
        let l = S3Location::parse("s3://bkt").unwrap();
        let s =
            settings_from(AmazonS3Builder::new(), l, &opts(&[("region", "us-west-2")])).unwrap();
        assert_eq!(s.endpoint, "AWS S3 (us-west-2)");
    }

    #[test]
    fn durations_in_seconds_or_humantime() {
        assert_eq!(parse_duration("k", "2").unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_duration("k", "0.25").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("k", "750ms").unwrap(),
            Duration::from_millis(750)
        );
        assert_eq!(parse_duration("k", "3s").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("k", "NaN").is_err());
        assert!(parse_duration("k", "3 fortnights").is_err());
    }
}
