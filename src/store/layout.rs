//! Where each kind of record lives, as typed keys.
//!
//! Every file the store touches is named by a [`Key`], and a key is built only from numbers the
//! store assigned or from digests it validated (exactly 64 lowercase hex digits). Nothing a user
//! types, and nothing read from a (possibly hostile) manifest without validation, can become a
//! path: that is what makes `../` in an alias or a doctored `"blob": "../../etc/passwd"` harmless.
//!
//! ```text
//! <root>/FORMAT                     store format version, written once
//! <root>/blobs/<blake3>             model files and probe sets, content-addressed, create-only
//! <root>/versions/<n:010>.json      version manifests, create-only; n is the version number
//! <root>/versions/<n:010>.deleted   tombstone of a deleted version (the manifest stays)
//! <root>/events/<seq:012>.json      the append-only history, create-only; seq = 1, 2, 3, ...
//! <root>/ACTIVE                     anchor: "<seq> <blake3>" of the head event; replaced atomically
//! <root>/gc/<blake3>                object storage only: gc's mark on an unreferenced blob
//! <root>/gc/clock                   object storage only: rewritten by each gc run, so mark ages
//!                                   come from the service's own timestamps
//! <root>/guard/<g:012>-<p|o|d>-<n:010>.json
//!                                   a deployment guard's records (`crate::guard`), create-only:
//!                                   prediction-log segments (p), outcome segments (o) and its
//!                                   decision claim (d); g is the seq of its guard_started event
//! <root>/tmp/                       temporary files before they are linked into place (debris)
//! <root>/LOCK                       advisory writer lock (saves retries, not needed for safety)
//! ```
//!
//! Numbers are zero-padded so that a plain directory listing is already in order, but parsing
//! never relies on the padding.

use std::fmt;

use crate::error::{Result, WoodlotError};

/// Store format written in `FORMAT`; a store with a newer format is refused.
pub const STORE_FORMAT: u32 = 1;

/// A BLAKE3 digest, validated to be 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Validates a hex digest (from our own hashing or from a file that may be hostile).
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_string()))
        } else {
            let shown: String = s.chars().take(80).flat_map(char::escape_default).collect();
            Err(WoodlotError::corrupt(format!(
                "\"{shown}\" is not a BLAKE3 digest (64 lowercase hex digits)"
            )))
        }
    }

    /// The digest of some bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(blake3::hash(bytes).to_hex().to_string())
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The directories of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// `blobs/`
    Blobs,
    /// `versions/`
    Versions,
    /// `events/`
    Events,
    /// `tmp/`
    Tmp,
    /// `gc/`: marks of gc's two-phase sweep on object storage. Not in [`Dir::ALL`]: a local
    /// store never writes it (its gc holds the writer lock), so no directory is created for it.
    Gc,
    /// `guard/`: the deployment guards' prediction logs, outcomes and decision claims. Not in
    /// [`Dir::ALL`] either: stores made before guards existed (possibly read-only) must keep
    /// opening, so it is created on first use ([`crate::store::backend::Backend::ensure_dir`]).
    Guard,
}

impl Dir {
    /// Every directory, in creation order.
    pub const ALL: [Dir; 4] = [Dir::Blobs, Dir::Versions, Dir::Events, Dir::Tmp];

    /// The directory's name under the root.
    pub fn name(self) -> &'static str {
        match self {
            Dir::Blobs => "blobs",
            Dir::Versions => "versions",
            Dir::Events => "events",
            Dir::Tmp => "tmp",
            Dir::Gc => "gc",
            Dir::Guard => "guard",
        }
    }
}

/// One record of the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `FORMAT`
    Format,
    /// `ACTIVE`, the head hint.
    Hint,
    /// `LOCK`
    Lock,
    /// `blobs/<digest>`
    Blob(Digest),
    /// `versions/<n>.json`
    Manifest(u64),
    /// `versions/<n>.deleted`
    Tombstone(u64),
    /// `events/<seq>.json`
    Event(u64),
    /// `tmp/<name>`: a name the backend made (never user input), validated as a plain file name.
    Temp(String),
    /// `gc/<digest>`: gc marked this blob as unreferenced (object storage only).
    GcMark(Digest),
    /// `gc/clock`: rewritten at the start of each gc run on object storage; its last-modified
    /// time is the service's "now" that mark ages are measured against.
    GcClock,
    /// `guard/<guard>-<part>-<seq>.json`: one create-only record of a deployment guard.
    Guard {
        /// The guard: the seq of its `guard_started` event.
        guard: u64,
        /// Which of the guard's records.
        part: GuardPart,
        /// Its number within that part, from 1.
        seq: u64,
    },
}

/// Which record of a guard a [`Key::Guard`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GuardPart {
    /// A segment of the prediction log (`p`).
    Predictions,
    /// A segment of recorded outcomes (`o`).
    Outcomes,
    /// The decision claim (`d`): whoever creates it decides, once.
    Decision,
}

impl GuardPart {
    /// The letter in the file name.
    pub fn letter(self) -> char {
        match self {
            GuardPart::Predictions => 'p',
            GuardPart::Outcomes => 'o',
            GuardPart::Decision => 'd',
        }
    }

    fn from_letter(s: &str) -> Option<Self> {
        match s {
            "p" => Some(GuardPart::Predictions),
            "o" => Some(GuardPart::Outcomes),
            "d" => Some(GuardPart::Decision),
            _ => None,
        }
    }
}

impl Key {
    /// The path relative to the store root, with `/` separators.
    pub fn path(&self) -> String {
        match self {
            Key::Format => "FORMAT".into(),
            Key::Hint => "ACTIVE".into(),
            Key::Lock => "LOCK".into(),
            Key::Blob(d) => format!("blobs/{d}"),
            Key::Manifest(n) => format!("versions/{n:010}.json"),
            Key::Tombstone(n) => format!("versions/{n:010}.deleted"),
            Key::Event(s) => format!("events/{s:012}.json"),
            Key::Temp(name) => format!("tmp/{name}"),
            Key::GcMark(d) => format!("gc/{d}"),
            Key::GcClock => "gc/clock".into(),
            Key::Guard { guard, part, seq } => {
                format!("guard/{guard:012}-{}-{seq:010}.json", part.letter())
            }
        }
    }

    /// The directory the key lives in, if any.
    pub fn dir(&self) -> Option<Dir> {
        match self {
            Key::Format | Key::Hint | Key::Lock => None,
            Key::Blob(_) => Some(Dir::Blobs),
            Key::Manifest(_) | Key::Tombstone(_) => Some(Dir::Versions),
            Key::Event(_) => Some(Dir::Events),
            Key::Temp(_) => Some(Dir::Tmp),
            Key::GcMark(_) | Key::GcClock => Some(Dir::Gc),
            Key::Guard { .. } => Some(Dir::Guard),
        }
    }

    /// Parses a file name found by listing `dir` back into a key; foreign names give `None`.
    pub fn from_listing(dir: Dir, name: &str) -> Option<Key> {
        fn number(s: &str) -> Option<u64> {
            if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok().filter(|n| *n > 0)
        }
        match dir {
            Dir::Blobs => Digest::parse(name).ok().map(Key::Blob),
            Dir::Versions => {
                if let Some(n) = name.strip_suffix(".json").and_then(number) {
                    Some(Key::Manifest(n))
                } else {
                    name.strip_suffix(".deleted")
                        .and_then(number)
                        .map(Key::Tombstone)
                }
            }
            Dir::Events => name.strip_suffix(".json").and_then(number).map(Key::Event),
            Dir::Gc if name == "clock" => Some(Key::GcClock),
            Dir::Gc => Digest::parse(name).ok().map(Key::GcMark),
            Dir::Guard => {
                let mut parts = name.strip_suffix(".json")?.split('-');
                let guard = number(parts.next()?)?;
                let part = GuardPart::from_letter(parts.next()?)?;
                let seq = number(parts.next()?)?;
                parts
                    .next()
                    .is_none()
                    .then_some(Key::Guard { guard, part, seq })
            }
            Dir::Tmp => {
                let plain = !name.is_empty()
                    && name != "."
                    && name != ".."
                    && !name.contains(['/', '\\', '\0']);
                plain.then(|| Key::Temp(name.to_string()))
            }
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// The entries a store root may contain; anything else in a directory without `FORMAT` means
/// it is not ours to take over.
pub const ROOT_ENTRIES: [&str; 9] = [
    "FORMAT", "ACTIVE", "LOCK", "blobs", "versions", "events", "tmp", "gc", "guard",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_listings() {
        let d = Digest::of(b"x");
        for (dir, key) in [
            (Dir::Blobs, Key::Blob(d.clone())),
            (Dir::Versions, Key::Manifest(7)),
            (Dir::Versions, Key::Tombstone(7)),
            (Dir::Events, Key::Event(12)),
            (Dir::Tmp, Key::Temp("123-abc.tmp".into())),
            (Dir::Gc, Key::GcMark(d.clone())),
            (Dir::Gc, Key::GcClock),
            (
                Dir::Guard,
                Key::Guard {
                    guard: 4,
                    part: GuardPart::Outcomes,
                    seq: 9,
                },
            ),
        ] {
            let path = key.path();
            let (dname, fname) = path.split_once('/').unwrap();
            assert_eq!(dname, dir.name());
            assert_eq!(Key::from_listing(dir, fname), Some(key.clone()));
            assert_eq!(key.dir(), Some(dir));
        }
        assert_eq!(Key::Manifest(3).path(), "versions/0000000003.json");
        assert_eq!(Key::Event(3).path(), "events/000000000003.json");
        assert_eq!(
            Key::Guard {
                guard: 3,
                part: GuardPart::Predictions,
                seq: 2
            }
            .path(),
            "guard/000000000003-p-0000000002.json"
        );
        assert_eq!(Key::from_listing(Dir::Guard, "3-x-2.json"), None);
        assert_eq!(Key::from_listing(Dir::Guard, "3-p-2-1.json"), None);
        assert_eq!(Key::from_listing(Dir::Guard, "0-p-2.json"), None);
    }

    #[test]
    fn foreign_and_hostile_names_are_not_keys() {
        assert_eq!(Key::from_listing(Dir::Versions, "0.json"), None);
        assert_eq!(Key::from_listing(Dir::Versions, "x.json"), None);
        assert_eq!(Key::from_listing(Dir::Versions, "-1.json"), None);
        assert_eq!(Key::from_listing(Dir::Events, "1.json.tmp"), None);
        assert_eq!(Key::from_listing(Dir::Blobs, "ABC"), None);
        assert_eq!(Key::from_listing(Dir::Tmp, ".."), None);
        assert_eq!(Key::from_listing(Dir::Tmp, "a/b"), None);
        assert!(Digest::parse("../../etc/passwd").is_err());
        assert!(Digest::parse(&"A".repeat(64)).is_err());
        assert!(Digest::parse(&"a".repeat(63)).is_err());
        assert!(Digest::parse(&"a".repeat(64)).is_ok());
    }
}
