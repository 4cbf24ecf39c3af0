//! Validation of user-typed names and parsing of version references.
//!
//! Users type references (`3`, `"v3"`, `"latest"`, `"active"`, an alias) and alias names. None of
//! them ever becomes a path: versions are numbers and aliases live inside JSON. Aliases are still
//! held to a strict, boring alphabet (ASCII letters, digits, `.`, `_`, `-`, at most 64 bytes,
//! starting with a letter or digit) because they show up in tables, logs and shell scripts, and
//! because a strict alphabet makes the hard cases (Unicode look-alikes, NFC vs NFD forms,
//! right-to-left overrides, `%2e%2e`, NUL) impossible rather than something to normalise.

use crate::error::{Result, WoodlotError};

/// Longest alias accepted, in bytes.
pub const MAX_ALIAS_LEN: usize = 64;

/// A reference to one version, as parsed from what the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// A version number (`3` or `"v3"`).
    Number(u64),
    /// The newest version that has not been deleted.
    Latest,
    /// The active version.
    Active,
    /// A named alias.
    Alias(String),
}

impl Ref {
    /// Parses a string reference: `"v3"`, `"3"`, `"latest"`, `"active"` or an alias name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "latest" => return Ok(Ref::Latest),
            "active" => return Ok(Ref::Active),
            _ => {}
        }
        if let Some(n) = parse_version_name(s) {
            return if n == 0 {
                Err(WoodlotError::VersionNotFound(format!(
                    "no version {s:?}: versions are numbered from 1"
                )))
            } else {
                Ok(Ref::Number(n))
            };
        }
        validate_alias_chars(s)?;
        Ok(Ref::Alias(s.to_string()))
    }

    /// A reference to a version number; 0 and negative numbers name nothing.
    pub fn number(n: i64) -> Result<Self> {
        if n < 1 {
            return Err(WoodlotError::VersionNotFound(format!(
                "no version {n}: versions are numbered from 1"
            )));
        }
        Ok(Ref::Number(n as u64))
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ref::Number(n) => write!(f, "v{n}"),
            Ref::Latest => f.write_str("latest"),
            Ref::Active => f.write_str("active"),
            Ref::Alias(a) => write!(f, "{a:?}"),
        }
    }
}

/// `"v12"` or `"12"` (ASCII digits only, at most 19 of them) to 12.
fn parse_version_name(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('v').unwrap_or(s);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The display name of a version number: `v3`.
pub fn version_name(n: u64) -> String {
    format!("v{n}")
}

fn validate_alias_chars(name: &str) -> Result<()> {
    let shown: String = name
        .chars()
        .take(40)
        .flat_map(char::escape_default)
        .collect();
    if name.is_empty() {
        return Err(WoodlotError::InvalidName("an alias cannot be empty".into()));
    }
    if name.len() > MAX_ALIAS_LEN {
        return Err(WoodlotError::InvalidName(format!(
            "alias \"{shown}...\" is {} bytes long; at most {MAX_ALIAS_LEN} are allowed",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        let why = if c.is_control() {
            "control characters".to_string()
        } else if matches!(c, '/' | '\\') {
            "path separators".to_string()
        } else if !c.is_ascii() {
            "non-ASCII characters (look-alikes and direction overrides are refused)".to_string()
        } else {
            format!("{c:?}")
        };
        return Err(WoodlotError::InvalidName(format!(
            "alias \"{shown}\" contains {why}; use ASCII letters, digits, '.', '_' and '-'"
        )));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(WoodlotError::InvalidName(format!(
            "alias \"{shown}\" must start with a letter or a digit"
        )));
    }
    Ok(())
}

/// Checks a new alias name: the alphabet above, and not a word that already means something
/// (`latest`, `active`, `v3`, `3`, and `none`, which `expect_active` uses for "no version").
pub fn validate_alias(name: &str) -> Result<()> {
    validate_alias_chars(name)?;
    if matches!(name, "latest" | "active" | "none") || parse_version_name(name).is_some() {
        return Err(WoodlotError::InvalidName(format!(
            "alias {name:?} is reserved: it already refers to a version"
        )));
    }
    Ok(())
}

/// Checks a free-text field (reason, description, tag) for size and control characters other
/// than newline and tab, so the history stays printable.
pub fn validate_text(what: &str, s: &str, max_len: usize) -> Result<()> {
    if s.len() > max_len {
        return Err(WoodlotError::input(format!(
            "{what} is {} bytes long; at most {max_len} are allowed",
            s.len()
        )));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(WoodlotError::input(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(Ref::parse("v3").unwrap(), Ref::Number(3));
        assert_eq!(Ref::parse("3").unwrap(), Ref::Number(3));
        assert_eq!(Ref::parse("latest").unwrap(), Ref::Latest);
        assert_eq!(Ref::parse("active").unwrap(), Ref::Active);
        assert_eq!(
            Ref::parse("champion").unwrap(),
            Ref::Alias("champion".into())
        );
        assert!(matches!(
            Ref::parse("v0"),
            Err(WoodlotError::VersionNotFound(_))
        ));
        assert!(matches!(
            Ref::number(0),
            Err(WoodlotError::VersionNotFound(_))
        ));
        assert!(matches!(
            Ref::number(-2),
            Err(WoodlotError::VersionNotFound(_))
        ));
        // 20 digits overflow u64: not a version number, and not a valid alias either (too long
        // is fine, but it is all digits, so it parses as an alias made of digits).
        assert!(Ref::parse("99999999999999999999").is_ok());
    }

    #[test]
    fn hostile_names_are_refused() {
        let long = "a".repeat(300);
        for bad in [
            "",
            "../x",
            "a/b",
            "a\\b",
            "/abs",
            ".",
            "..",
            "a\0b",
            "a\nb",
            "%2e%2e",
            long.as_str(),
            "cafe\u{301}",
            "caf\u{e9}",
            "x\u{202e}gpj",
            "\u{430}dmin",
            "-x",
            ".hidden",
            " x",
        ] {
            assert!(
                matches!(validate_alias(bad), Err(WoodlotError::InvalidName(_))),
                "{bad:?} was accepted"
            );
        }
        for bad in ["latest", "active", "none", "v1", "12"] {
            assert!(matches!(
                validate_alias(bad),
                Err(WoodlotError::InvalidName(_))
            ));
        }
        for good in ["champion", "prod", "canary-2", "A.b_c", "2024.q1"] {
            validate_alias(good).unwrap();
        }
    }

    #[test]
    fn text_fields() {
        validate_text("reason", "bad deploy\n\tsee ticket", 100).unwrap();
        assert!(validate_text("reason", "a\x1b[31m", 100).is_err());
        assert!(validate_text("reason", "aaaa", 3).is_err());
    }
}
