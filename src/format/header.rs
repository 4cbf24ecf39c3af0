//! The fixed 64-byte header of a model file, and the file checksum it carries.
//!
//! ```text
//! offset  size  field
//!      0     8  magic 0x89 'W' 'D' 'L' '\r' '\n' 0x1a '\n'
//!      8     2  format major, u16 LE
//!     10     2  format minor, u16 LE
//!     12     4  flags, u32 LE (bit 0: multi-output forest; any other set bit is rejected)
//!     16     8  meta_len, u64 LE
//!     24     8  payload_len, u64 LE
//!     32    32  BLAKE3 of the whole file with these 32 bytes zeroed
//! ```
//!
//! The magic is PNG's trick: the high byte catches 7-bit transfers, `\r\n` and `\n` catch
//! line-ending conversion, and `0x1a` stops `type` on Windows. [`Header::parse`] runs the checks
//! that need nothing but the header and the file's length, in the order the loader needs them:
//! size, magic, version, flags, lengths. None of them allocates.

use std::ops::Range;

use super::validate::{in_parallel, PARALLEL_MIN_BYTES};
use crate::error::{Result, WoodlotError};

/// The file signature, the first 8 bytes of every model file.
pub const MAGIC: [u8; 8] = [0x89, b'W', b'D', b'L', b'\r', b'\n', 0x1a, b'\n'];

/// The format's major version. A reader rejects any other major version.
///
/// 2: the trees are stored as struct-of-arrays in depth-first preorder (1 stored them as
/// serde-derived bincode; never released).
pub const FORMAT_MAJOR: u16 = 2;

/// The format's minor version. Minor versions only add things an older reader of the same major
/// can ignore, so a reader accepts any minor version of its major.
///
/// 1: the meta may hold `training_histogram` (each feature's histogram over the training rows,
/// for drift); a 2.0 reader ignores it, a 2.1 reader loads 2.0 files without it.
pub const FORMAT_MINOR: u16 = 1;

/// Length of the fixed header in bytes.
pub const HEADER_LEN: usize = 64;

/// Set in a file holding a multi-output forest (its meta lists `output_classes`). An older
/// woodlot would read such a file as one output whose leaf rows do not sum to 1; the flag makes
/// it refuse the file as needing a newer woodlot instead. Single-output files never set it, so
/// they are byte-identical to those of earlier versions.
pub const FLAG_MULTI_OUTPUT: u32 = 1;

/// Flag bits this version understands. Any other set bit makes a file unreadable.
pub const KNOWN_FLAGS: u32 = FLAG_MULTI_OUTPUT;

/// Largest meta section a reader accepts (1 GiB). Real metas are kilobytes; feature names of a
/// very wide data set may reach megabytes.
pub const MAX_META_LEN: u64 = 1 << 30;

/// Largest payload a reader accepts (1 TiB; 2 GiB on 32-bit targets, where it must fit memory).
#[cfg(target_pointer_width = "64")]
pub const MAX_PAYLOAD_LEN: u64 = 1 << 40;
/// Largest payload a reader accepts (1 TiB; 2 GiB on 32-bit targets, where it must fit memory).
#[cfg(not(target_pointer_width = "64"))]
pub const MAX_PAYLOAD_LEN: u64 = 1 << 31;

/// Where the checksum lives in the header.
const CHECKSUM_AT: Range<usize> = 32..64;

/// The decoded fixed header of a model file whose size, magic, version, flags and lengths have
/// been checked (the checksum has not: see [`Header::verify_checksum`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format major version (always [`FORMAT_MAJOR`] once parsed).
    pub major: u16,
    /// Format minor version; may be higher than [`FORMAT_MINOR`].
    pub minor: u16,
    /// Flag bits (a subset of [`KNOWN_FLAGS`] once parsed).
    pub flags: u32,
    /// Length of the JSON meta section.
    pub meta_len: u64,
    /// Length of the bincode payload section.
    pub payload_len: u64,
    /// The stored BLAKE3 checksum.
    pub checksum: [u8; 32],
}

impl Header {
    /// A header for a file of this version with the given section lengths and a zero checksum
    /// (the encoder fills it in last).
    pub fn new(meta_len: u64, payload_len: u64) -> Self {
        Self {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
            flags: 0,
            meta_len,
            payload_len,
            checksum: [0; 32],
        }
    }

    /// The 64 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&self.major.to_le_bytes());
        h[10..12].copy_from_slice(&self.minor.to_le_bytes());
        h[12..16].copy_from_slice(&self.flags.to_le_bytes());
        h[16..24].copy_from_slice(&self.meta_len.to_le_bytes());
        h[24..32].copy_from_slice(&self.payload_len.to_le_bytes());
        h[CHECKSUM_AT].copy_from_slice(&self.checksum);
        h
    }

    /// Parses and checks the header of a whole model file: size, magic, version, flags, then
    /// that `64 + meta_len + payload_len` is exactly the file's length.
    ///
    /// Every failure is [`WoodlotError::CorruptModel`] with a reason a person can act on.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
            return Err(too_short(bytes));
        };
        if h[0..8] != MAGIC {
            return Err(bad_magic(bytes));
        }
        let major = u16::from_le_bytes([h[8], h[9]]);
        let minor = u16::from_le_bytes([h[10], h[11]]);
        if major != FORMAT_MAJOR {
            return Err(if major > FORMAT_MAJOR {
                WoodlotError::corrupt(format!(
                    "format version {major}.{minor} is newer than this woodlot {} (reads \
                     {FORMAT_MAJOR}.x); upgrade woodlot to load it",
                    env!("CARGO_PKG_VERSION")
                ))
            } else {
                WoodlotError::corrupt(format!(
                    "format version {major}.{minor} was never released (this woodlot reads \
                     {FORMAT_MAJOR}.x)"
                ))
            });
        }
        let flags = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        let unknown = flags & !KNOWN_FLAGS;
        if unknown != 0 {
            return Err(WoodlotError::corrupt(format!(
                "unknown flag bits {unknown:#x} in a format {major}.{minor} file: it needs a \
                 feature this woodlot {} does not have",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let meta_len = u64_at(h, 16);
        let payload_len = u64_at(h, 24);
        let mut checksum = [0u8; 32];
        checksum.copy_from_slice(&h[CHECKSUM_AT]);
        let header = Self {
            major,
            minor,
            flags,
            meta_len,
            payload_len,
            checksum,
        };
        header.check_lengths(bytes.len())?;
        Ok(header)
    }

    /// `64 + meta_len + payload_len` must equal the file length exactly, in checked arithmetic,
    /// and each section must be within the sizes a reader accepts.
    fn check_lengths(&self, file_len: usize) -> Result<()> {
        // usize is at most 64 bits on every target Rust supports: this widening is lossless.
        let file_len = file_len as u64;
        let (m, p) = (self.meta_len, self.payload_len);
        let Some(total) = (HEADER_LEN as u64)
            .checked_add(m)
            .and_then(|t| t.checked_add(p))
        else {
            return Err(WoodlotError::corrupt(format!(
                "header lengths overflow (meta_len {m}, payload_len {p}): the header is damaged"
            )));
        };
        if total > file_len {
            return Err(WoodlotError::corrupt(format!(
                "header promises {m} bytes of meta and {p} bytes of payload ({total} bytes in \
                 all) but the file is {file_len} bytes: it is truncated or damaged"
            )));
        }
        if total < file_len {
            return Err(WoodlotError::corrupt(format!(
                "file has {} unexpected trailing bytes: the header accounts for {total} of its \
                 {file_len} bytes",
                file_len - total
            )));
        }
        if m > MAX_META_LEN {
            return Err(WoodlotError::corrupt(format!(
                "meta section of {m} bytes is larger than any woodlot meta (max {MAX_META_LEN})"
            )));
        }
        if p > MAX_PAYLOAD_LEN {
            return Err(WoodlotError::corrupt(format!(
                "payload of {p} bytes is larger than this woodlot reads (max {MAX_PAYLOAD_LEN})"
            )));
        }
        Ok(())
    }

    /// Checks the stored checksum against the file. `bytes` must be the file this header was
    /// parsed from.
    pub fn verify_checksum(&self, bytes: &[u8]) -> Result<()> {
        let actual = file_checksum(bytes)?;
        // blake3::Hash compares in constant time; not needed here, but free.
        if blake3::Hash::from(actual) != blake3::Hash::from(self.checksum) {
            return Err(WoodlotError::corrupt(format!(
                "checksum mismatch: file is damaged (stored blake3 {}..., computed {}...)",
                short_hex(&self.checksum),
                short_hex(&actual)
            )));
        }
        Ok(())
    }

    /// The meta and payload sections of the file this header was parsed from.
    pub fn sections<'a>(&self, bytes: &'a [u8]) -> Result<(&'a [u8], &'a [u8])> {
        let meta_len = to_usize(self.meta_len, "meta_len")?;
        let payload_len = to_usize(self.payload_len, "payload_len")?;
        let meta_end = HEADER_LEN
            .checked_add(meta_len)
            .ok_or_else(|| WoodlotError::corrupt("meta_len overflows this platform's usize"))?;
        let end = meta_end
            .checked_add(payload_len)
            .ok_or_else(|| WoodlotError::corrupt("payload_len overflows this platform's usize"))?;
        match (bytes.get(HEADER_LEN..meta_end), bytes.get(meta_end..end)) {
            (Some(meta), Some(payload)) if end == bytes.len() => Ok((meta, payload)),
            _ => Err(WoodlotError::corrupt(
                "section lengths do not match the file (header parsed from other bytes?)",
            )),
        }
    }
}

/// BLAKE3 of a whole model file with its checksum field (bytes 32..64) taken as zeros.
///
/// Errors if `bytes` is shorter than the header. A file as large as one whose trees decode in
/// parallel (`validate::PARALLEL_MIN_BYTES`, 1 MiB; BLAKE3's own advice puts the break-even
/// near 128 KiB) is hashed on the cores of the current rayon pool (or the cached pool of all
/// cores): BLAKE3 is a tree hash, the same bytes give the same digest either way, and on two
/// cores the 24 MB file of the 100k x 50 forest hashed in about 4.3 ms instead of one core's
/// 7 ms (best of six each), which every load pays before decoding.
pub fn file_checksum(bytes: &[u8]) -> Result<[u8; 32]> {
    let (Some(before), Some(after)) =
        (bytes.get(..CHECKSUM_AT.start), bytes.get(CHECKSUM_AT.end..))
    else {
        return Err(too_short(bytes));
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(before);
    hasher.update(&[0u8; CHECKSUM_AT.end - CHECKSUM_AT.start]);
    if after.len() >= PARALLEL_MIN_BYTES {
        in_parallel(|| {
            hasher.update_rayon(after);
        })?;
    } else {
        hasher.update(after);
    }
    Ok(*hasher.finalize().as_bytes())
}

/// Writes the checksum of `bytes` into its checksum field. Used by the encoder, and by tests
/// that craft hostile files with a valid checksum.
pub(crate) fn seal(bytes: &mut [u8]) -> Result<()> {
    let sum = file_checksum(bytes)?;
    match bytes.get_mut(CHECKSUM_AT) {
        Some(field) => {
            field.copy_from_slice(&sum);
            Ok(())
        }
        None => Err(too_short(bytes)),
    }
}

fn u64_at(h: &[u8; HEADER_LEN], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[at..at + 8]);
    u64::from_le_bytes(b)
}

fn to_usize(v: u64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| {
        WoodlotError::corrupt(format!("{what} {v} does not fit this platform's memory"))
    })
}

fn short_hex(b: &[u8; 32]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}

/// The error for a file shorter than the header, saying what the file looks like.
fn too_short(bytes: &[u8]) -> WoodlotError {
    if bytes.is_empty() {
        return WoodlotError::corrupt("file is empty (0 bytes), not a woodlot model");
    }
    let n = bytes.len();
    let looks = match describe(bytes) {
        Some(what) => format!("; it looks like {what}"),
        None if MAGIC.starts_with(bytes) || bytes.starts_with(&MAGIC) => {
            "; it starts like a woodlot model, so it was cut short".to_string()
        }
        None => String::new(),
    };
    WoodlotError::corrupt(format!(
        "file is {n} bytes, shorter than the {HEADER_LEN}-byte header{looks}"
    ))
}

/// The error for a file whose first 8 bytes are not [`MAGIC`], saying what the file looks like.
fn bad_magic(bytes: &[u8]) -> WoodlotError {
    let what = describe(bytes).unwrap_or_else(|| {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("an unknown format (first bytes {})", head.join(" "))
    });
    WoodlotError::corrupt(format!("not a woodlot model file: it looks like {what}"))
}

/// Recognises the files people most often hand to `load` by mistake.
fn describe(bytes: &[u8]) -> Option<String> {
    let s = |p: &[u8]| bytes.starts_with(p);
    let what = if bytes.is_empty() {
        "an empty file"
    } else if s(b"PK\x03\x04") || s(b"PK\x05\x06") {
        "a zip archive (a skops file or numpy .npz?), not a woodlot model"
    } else if bytes.len() >= 2 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]) {
        "a Python pickle (pickle.dump or joblib.dump output); woodlot never unpickles on load, \
         save with woodlot.dump instead"
    } else if s(&[0x1f, 0x8b]) {
        "a gzip stream (a compressed joblib dump?)"
    } else if s(b"version https://git-lfs") {
        "a Git LFS pointer, not the model itself: run `git lfs pull`"
    } else if s(b"\x89HDF") {
        "an HDF5 file (a Keras model?)"
    } else if s(b"\x89PNG") {
        "a PNG image"
    } else if s(&MAGIC[..4]) && !MAGIC.starts_with(bytes) && !bytes.starts_with(&MAGIC) {
        "a woodlot model whose signature was mangled, typically by a text-mode transfer that \
         rewrote line endings; copy the file in binary mode"
    } else if matches!(bytes.first(), Some(b'{') | Some(b'[')) {
        "JSON text"
    } else {
        return None;
    };
    Some(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(meta_len: u64, payload_len: u64, extra: usize) -> Vec<u8> {
        let mut v = Header::new(meta_len, payload_len).to_bytes().to_vec();
        v.resize(
            HEADER_LEN + meta_len as usize + payload_len as usize + extra,
            b'x',
        );
        v
    }

    /// A file large enough to be hashed on several cores has the digest of the plain,
    /// one-thread BLAKE3 of its bytes with the checksum field zeroed, as a small one does.
    #[test]
    fn large_and_small_files_hash_as_one_thread_would() {
        for len in [
            HEADER_LEN,
            4096,
            PARALLEL_MIN_BYTES + 7,
            3 * PARALLEL_MIN_BYTES,
        ] {
            let mut bytes: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
            let sum = file_checksum(&bytes).unwrap();
            bytes[CHECKSUM_AT].fill(0);
            assert_eq!(sum, *blake3::hash(&bytes).as_bytes(), "{len} bytes");
        }
    }

    fn err(bytes: &[u8]) -> String {
        match Header::parse(bytes) {
            Err(WoodlotError::CorruptModel(m)) => m,
            other => panic!("expected CorruptModel, got {other:?}"),
        }
    }

    #[test]
    fn layout_is_exactly_as_documented() {
        let mut h = Header::new(0x0102, 0x0304);
        h.checksum = [0xab; 32];
        let b = h.to_bytes();
        assert_eq!(&b[0..8], b"\x89WDL\r\n\x1a\n");
        assert_eq!(&b[8..16], &[2, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(&b[16..24], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[24..32], &[4, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[32..64], &[0xab; 32]);
    }

    #[test]
    fn parse_round_trips() {
        let bytes = file(3, 5, 0);
        let h = Header::parse(&bytes).unwrap();
        assert_eq!(h, Header::new(3, 5));
        let (meta, payload) = h.sections(&bytes).unwrap();
        assert_eq!((meta.len(), payload.len()), (3, 5));
    }

    #[test]
    fn every_short_length_is_rejected() {
        let bytes = file(0, 0, 0);
        for n in 0..HEADER_LEN {
            let m = err(&bytes[..n]);
            assert!(
                m.contains("shorter than the 64-byte header") || m.contains("empty"),
                "{m}"
            );
        }
        assert!(err(&bytes[..12]).contains("file is 12 bytes"));
        assert!(err(&bytes[..12]).contains("cut short"));
        assert!(err(&[]).contains("empty"));
    }

    #[test]
    fn wrong_magic_says_what_the_file_is() {
        let mut zip = b"PK\x03\x04".to_vec();
        zip.resize(100, 0);
        assert!(err(&zip).contains("zip archive"), "{}", err(&zip));
        assert!(err(&zip[..10]).contains("zip archive"));
        let mut pickle = vec![0x80, 4, 0x95];
        pickle.resize(100, 0);
        assert!(err(&pickle).contains("pickle"), "{}", err(&pickle));
        let mut lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:".to_vec();
        lfs.resize(130, b'0');
        assert!(err(&lfs).contains("git lfs pull"));
        // A text-mode copy that turned "\r\n" into "\n".
        let mut crlf = file(0, 0, 0);
        crlf.remove(4);
        crlf.push(0);
        assert!(err(&crlf).contains("line endings"), "{}", err(&crlf));
        let junk = [7u8; 64];
        assert!(err(&junk).contains("first bytes 07 07"), "{}", err(&junk));
    }

    #[test]
    fn other_major_versions_are_rejected_higher_minor_accepted() {
        let mut b = file(0, 0, 0);
        b[8] = 7;
        let m = err(&b);
        assert!(
            m.contains("format version 7.1 is newer than this woodlot"),
            "{m}"
        );
        assert!(m.contains("reads 2.x"), "{m}");
        b[8] = 0;
        assert!(err(&b).contains("never released"));
        // 1.x (bincode of the whole forest) was never released either.
        b[8] = 1;
        assert!(err(&b).contains("format version 1.1 was never released"));
        b[8] = 2;
        b[10] = 9;
        assert_eq!(Header::parse(&b).unwrap().minor, 9);
    }

    #[test]
    fn unknown_flags_are_rejected() {
        assert!(Header::parse(&{
            let mut b = file(0, 0, 0);
            b[12..16].copy_from_slice(&FLAG_MULTI_OUTPUT.to_le_bytes());
            b
        })
        .is_ok_and(|h| h.flags == FLAG_MULTI_OUTPUT));
        for bit in 1..32 {
            let mut b = file(0, 0, 0);
            b[12..16].copy_from_slice(&(1u32 << bit).to_le_bytes());
            let m = err(&b);
            assert!(
                m.contains(&format!("unknown flag bits {:#x}", 1u32 << bit)),
                "{m}"
            );
        }
    }

    #[test]
    fn lengths_must_match_the_file_exactly() {
        assert!(err(&file(3, 5, 1)).contains("1 unexpected trailing bytes"));
        let mut short = file(3, 5, 0);
        short.pop();
        assert!(err(&short).contains("truncated"));
        // Hostile lengths neither overflow nor allocate.
        let mut b = file(0, 0, 0);
        b[16..24].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(
            err(&b).contains("4611686018427387904 bytes of meta"),
            "{}",
            err(&b)
        );
        b[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(err(&b).contains("truncated"));
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(err(&b).contains("overflow"), "{}", err(&b));
    }

    #[test]
    fn checksum_covers_everything_but_itself() {
        let mut b = file(2, 2, 0);
        seal(&mut b).unwrap();
        let h = Header::parse(&b).unwrap();
        h.verify_checksum(&b).unwrap();
        // The stored checksum does not feed into itself.
        assert_eq!(file_checksum(&b).unwrap(), h.checksum);
        let last = b.len() - 1;
        b[last] ^= 1;
        let m = h.verify_checksum(&b).unwrap_err().to_string();
        assert!(m.contains("checksum mismatch: file is damaged"), "{m}");
        assert!(file_checksum(&b[..63]).is_err());
    }
}
