//! The append-only history: one create-only file per event, numbered 1, 2, 3, ... with no gaps.
//!
//! Each event records what happened (save, promote, rollback, alias, delete, compare, decision),
//! who did it, when, why and with what evidence, and the store's resulting state: the active
//! version, the aliases, and `back`, the event whose state a rollback returns to. The newest
//! event's state *is* the store's state, so readers need one file, and every past state stays
//! reachable from the history.
//!
//! Writers race for the next number with a create-only write: exactly one wins; the loser
//! re-reads the head and either retries (for changes that do not depend on the state) or fails
//! with a conflict (a stale `expect_active`). Each event also carries the BLAKE3 of its
//! predecessor's file, so the history is a hash chain and `verify()` notices edits.
//!
//! `ACTIVE` at the root is the head's anchor: `"<seq> <blake3 of that event's file>"`, replaced
//! after each append. Readers start from it and step forward while the next event exists,
//! checking at each step that the next event's `prev` is the digest of the one before, so
//! what they build on is a chain, not just a set of files. Because the anchor is written only
//! after its event is durable, an anchor that points past the last event, or whose digest
//! disagrees with the event it names, means the history lost its tail (a bad sync or restore)
//! or was replaced: reads and appends then refuse with [`WoodlotError::Store`] instead of
//! silently serving (and building on) an older state. A missing or unparseable anchor is only
//! a lost hint: the head is then the newest listed event, whose link to its predecessor is
//! checked.
//!
//! Deletion is part of the state too (`deleted`): the `delete` event is the one commit point
//! of a delete, so every later event, computed from the state it follows, knows the version is
//! gone and a promotion or alias of it is refused atomically with its append.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, WoodlotError};
use crate::store::backend::Backend;
use crate::store::layout::{Dir, Key};
use crate::store::manifest::MAX_RECORD_LEN;
use crate::store::sysinfo::Actor;

/// Event format written by this version of woodlot.
pub const EVENT_FORMAT: u32 = 1;

/// How many times an append re-reads the head and tries again before giving up.
const MAX_APPEND_ATTEMPTS: usize = 10_000;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A version was saved.
    Save,
    /// A version was made active.
    Promote,
    /// The active version was rolled back.
    Rollback,
    /// An alias was set or moved.
    AliasSet,
    /// An alias was removed.
    AliasRemoved,
    /// A version was deleted.
    Delete,
    /// Versions were compared on evaluation data (the evidence later promotions cite).
    Compare,
    /// `promote_if_better` decided not to promote.
    Decision,
    /// A deployment guard started watching a candidate against a baseline (`crate::guard`).
    /// The state is the one it follows, unchanged: older woodlots read it as `Unknown` and
    /// still see the store's state exactly (their `verify()` notes the unknown kind).
    GuardStarted,
    /// A deployment guard decided (rolled back, dropped, confirmed, promoted, ...), with its
    /// evidence; the state is unchanged (the rollback or promotion is its own event).
    GuardDecided,
    /// A kind written by a newer woodlot.
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// The kind's name as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Save => "save",
            EventKind::Promote => "promote",
            EventKind::Rollback => "rollback",
            EventKind::AliasSet => "alias_set",
            EventKind::AliasRemoved => "alias_removed",
            EventKind::Delete => "delete",
            EventKind::Compare => "compare",
            EventKind::Decision => "decision",
            EventKind::GuardStarted => "guard_started",
            EventKind::GuardDecided => "guard_decided",
            EventKind::Unknown => "unknown",
        }
    }
}

/// The store's state after an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The active version, if any.
    pub active: Option<u64>,
    /// The event whose `active` a plain `rollback()` restores (and whose `back` it inherits),
    /// making the activation history a stack threaded through the log.
    pub back: Option<u64>,
    /// Alias name to version number.
    #[serde(default)]
    pub aliases: BTreeMap<String, u64>,
    /// Deleted versions. A delete event adds its version here, and this set is what makes the
    /// version deleted (tombstone files are only read, from stores written by older woodlots).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub deleted: BTreeSet<u64>,
}

impl State {
    /// Whether the state references `v`: active or the target of an alias.
    pub fn references(&self, v: u64) -> bool {
        self.active == Some(v) || self.aliases.values().any(|t| *t == v)
    }
}

/// One event of the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event format.
    pub format: u32,
    /// Position in the history, from 1; equal to the number in the file name.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who.
    pub user: String,
    /// On which host.
    pub host: String,
    /// From which process.
    pub pid: u32,
    /// The version the event is about, if one.
    pub version: Option<u64>,
    /// The user's reason, if given.
    pub reason: Option<String>,
    /// Kind-specific details and evidence.
    #[serde(default)]
    pub details: Value,
    /// The store's state after this event.
    pub state: State,
    /// BLAKE3 of the previous event's file (absent for the first event).
    pub prev: Option<String>,
}

impl Event {
    /// Parses and checks an event read from `events/<expected>.json`.
    pub fn parse(bytes: &[u8], expected: u64) -> Result<Self> {
        let e: Event = serde_json::from_slice(bytes).map_err(|err| {
            WoodlotError::corrupt(format!("event {expected} is not valid: {err}"))
        })?;
        if e.format == 0 || e.format > EVENT_FORMAT {
            return Err(WoodlotError::Store(format!(
                "event {expected} has format {}; this woodlot reads format {EVENT_FORMAT} (upgrade woodlot)",
                e.format
            )));
        }
        if e.seq != expected {
            return Err(WoodlotError::corrupt(format!(
                "event file {expected} says it is event {}",
                e.seq
            )));
        }
        if let Some(back) = e.state.back {
            if back >= e.seq {
                return Err(WoodlotError::corrupt(format!(
                    "event {expected} points back to event {back}, which is not earlier"
                )));
            }
        }
        Ok(e)
    }

    /// Serialises for writing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("event serialises");
        v.push(b'\n');
        v
    }
}

/// What a writer wants to append; the log fills in number, actor and chain hash.
#[derive(Debug, Clone)]
pub struct Draft {
    /// What happened.
    pub kind: EventKind,
    /// The version concerned.
    pub version: Option<u64>,
    /// The user's reason.
    pub reason: Option<String>,
    /// Details and evidence.
    pub details: Value,
    /// The resulting state.
    pub state: State,
}

/// The newest event, as found by [`head`].
#[derive(Debug, Clone, Default)]
pub struct Head {
    /// Its number; 0 for an empty history.
    pub seq: u64,
    /// The event itself.
    pub event: Option<Event>,
    /// BLAKE3 of its file.
    pub digest: Option<String>,
}

impl Head {
    /// The store's current state (the default, empty state before any event).
    pub fn state(&self) -> State {
        self.event
            .as_ref()
            .map(|e| e.state.clone())
            .unwrap_or_default()
    }
}

/// Reads event `seq` and the BLAKE3 of its file.
pub fn read(backend: &dyn Backend, seq: u64) -> Result<Option<(Event, String)>> {
    match backend.read(&Key::Event(seq), MAX_RECORD_LEN)? {
        None => Ok(None),
        Some(bytes) => {
            let digest = blake3::hash(&bytes).to_hex().to_string();
            Ok(Some((Event::parse(&bytes, seq)?, digest)))
        }
    }
}

/// The numbers of every event file, ascending.
pub fn list(backend: &dyn Backend) -> Result<Vec<u64>> {
    let mut seqs: Vec<u64> = backend
        .list(Dir::Events)?
        .iter()
        .filter_map(|e| match Key::from_listing(Dir::Events, &e.name) {
            Some(Key::Event(s)) => Some(s),
            _ => None,
        })
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// What `ACTIVE` claims: the head event's number and (from this woodlot on) its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The head event's number when the anchor was written.
    pub seq: u64,
    /// BLAKE3 of that event's file; absent in anchors written by older woodlots.
    pub digest: Option<String>,
}

impl Anchor {
    /// Parses `"<seq>"` or `"<seq> <digest>"`; anything else is no anchor.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split_whitespace();
        let seq = parts.next()?.parse::<u64>().ok().filter(|s| *s > 0)?;
        let digest = match parts.next() {
            None => None,
            Some(d) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(d.to_ascii_lowercase())
            }
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self { seq, digest })
    }

    /// The bytes written to `ACTIVE`.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.digest {
            Some(d) => format!("{} {d}\n", self.seq).into_bytes(),
            None => format!("{}\n", self.seq).into_bytes(),
        }
    }
}

/// Reads `ACTIVE`; `None` when it is missing or unparseable (a lost hint, not a claim).
pub fn read_anchor(backend: &dyn Backend) -> Result<Option<Anchor>> {
    Ok(backend
        .read(&Key::Hint, 256)
        .ok()
        .flatten()
        .and_then(|b| Anchor::parse(&b)))
}

/// The error for an anchor that names an event the history does not have.
fn tail_lost(backend: &dyn Backend, anchor: &Anchor) -> Result<WoodlotError> {
    let last = list(backend)?.last().copied().unwrap_or(0);
    Ok(WoodlotError::Store(format!(
        "the history ends at event {last} but ACTIVE anchors event {}: events {}..{} were lost \
         (a truncated sync or restore?), and reading on would silently revert the store to an \
         older state. Restore events/ from a complete copy; or, to accept the loss and continue \
         from event {last}, remove the ACTIVE file",
        anchor.seq,
        last + 1,
        anchor.seq
    )))
}

/// Finds the newest event, refusing a history whose anchored head is missing or replaced.
///
/// From the anchor in `ACTIVE` (whose digest must match the event it names), stepping forward
/// while the next event exists and links to the one before; from the newest listed event (whose
/// link to its predecessor is checked) when there is no usable anchor.
pub fn head(backend: &dyn Backend) -> Result<Head> {
    let (mut seq, mut cur) = match read_anchor(backend)? {
        Some(anchor) => match read(backend, anchor.seq)? {
            Some((ev, digest)) => {
                if let Some(expected) = &anchor.digest {
                    if *expected != digest {
                        return Err(WoodlotError::Store(format!(
                            "ACTIVE anchors event {} with BLAKE3 {expected}, but that event's \
                             file has {digest}: the history was replaced or edited after it was \
                             written; run verify() and restore events/ from a good copy",
                            anchor.seq
                        )));
                    }
                }
                (anchor.seq, Some((ev, digest)))
            }
            None => return Err(tail_lost(backend, &anchor)?),
        },
        None => match list(backend)?.last().copied() {
            None => (0, None),
            Some(last) => {
                let (ev, digest) = read(backend, last)?.ok_or_else(|| {
                    WoodlotError::corrupt(format!("event {last} vanished while being read"))
                })?;
                if last > 1 {
                    if let Some((_, before)) = read(backend, last - 1)? {
                        check_link(&ev, last - 1, &before)?;
                    }
                }
                (last, Some((ev, digest)))
            }
        },
    };
    while let Some(next) = seq.checked_add(1) {
        let Some((ev, digest)) = read(backend, next)? else {
            break;
        };
        if let Some((_, before)) = &cur {
            check_link(&ev, seq, before)?;
        }
        seq = next;
        cur = Some((ev, digest));
    }
    Ok(match cur {
        None => Head::default(),
        Some((event, digest)) => Head {
            seq,
            event: Some(event),
            digest: Some(digest),
        },
    })
}

/// Refuses to build on an event whose `prev` is not the digest of the event before it.
fn check_link(ev: &Event, before_seq: u64, before_digest: &str) -> Result<()> {
    if ev.prev.as_deref() == Some(before_digest) {
        return Ok(());
    }
    Err(WoodlotError::Store(format!(
        "event {} does not link to event {before_seq} (its prev is not that event's BLAKE3): \
         the history was edited or mixed from two copies; run verify()",
        ev.seq
    )))
}

/// Appends an event. `make` sees the current head and returns the draft (or an error, e.g. a
/// conflict); if another writer takes the number first, the head is re-read and `make` runs
/// again, so a draft is always computed from the state it follows.
///
/// An event larger than readers accept ([`MAX_RECORD_LEN`]) is refused here, before anything
/// is written: committed, it would break every reader of the history.
pub fn append(
    backend: &dyn Backend,
    mut make: impl FnMut(&Head) -> Result<Draft>,
) -> Result<Event> {
    for _ in 0..MAX_APPEND_ATTEMPTS {
        let head = head(backend)?;
        let draft = make(&head)?;
        let actor = Actor::now();
        let event = Event {
            format: EVENT_FORMAT,
            // An event numbered u64::MAX (a damaged or foreign file) must not wrap the next
            // number around to 0, which no listing shows.
            seq: head.seq.checked_add(1).ok_or_else(|| {
                WoodlotError::corrupt(format!(
                    "the history holds an event numbered {}: no event number is left after it \
                     (a damaged or foreign file?)",
                    head.seq
                ))
            })?,
            kind: draft.kind,
            time: actor.time,
            user: actor.user,
            host: actor.host,
            pid: actor.pid,
            version: draft.version,
            reason: draft.reason,
            details: draft.details,
            state: draft.state,
            prev: head.digest.clone(),
        };
        let bytes = event.to_bytes();
        check_record_len(&format!("the {} event", event.kind.as_str()), bytes.len())?;
        if backend.create_new(&Key::Event(event.seq), &bytes)? {
            // The anchor of the new head. Losing this write (or having a slower writer's
            // anchor land after it) is harmless: readers step forward from an older anchor.
            let anchor = Anchor {
                seq: event.seq,
                digest: Some(blake3::hash(&bytes).to_hex().to_string()),
            };
            let _ = backend.replace(&Key::Hint, &anchor.to_bytes());
            return Ok(event);
        }
    }
    Err(WoodlotError::Conflict(format!(
        "could not append to the history after {MAX_APPEND_ATTEMPTS} attempts; other writers keep winning"
    )))
}

/// Refuses a record (manifest or event) that readers would refuse to read.
pub fn check_record_len(what: &str, len: usize) -> Result<()> {
    if len as u64 > MAX_RECORD_LEN {
        return Err(WoodlotError::input(format!(
            "{what} would be {len} bytes, but readers accept records of at most {MAX_RECORD_LEN} \
             bytes (MAX_RECORD_LEN, 16 MiB); it was not written. Make the tags, description, \
             metrics or feature names smaller"
        )));
    }
    Ok(())
}

/// Every event, oldest first. A missing number in the middle is reported as corruption.
pub fn all(backend: &dyn Backend) -> Result<Vec<Event>> {
    let seqs = list(backend)?;
    let mut out = Vec::with_capacity(seqs.len());
    for (i, seq) in seqs.into_iter().enumerate() {
        if seq != i as u64 + 1 {
            return Err(WoodlotError::corrupt(format!(
                "the history has a gap: event {} is missing",
                i + 1
            )));
        }
        match read(backend, seq)? {
            Some((e, _)) => out.push(e),
            None => {
                return Err(WoodlotError::corrupt(format!(
                    "event {seq} vanished while being read"
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalBackend;
    use crate::store::testutil::TempDir;

    fn draft(kind: EventKind, active: Option<u64>) -> Draft {
        Draft {
            kind,
            version: active,
            reason: None,
            details: Value::Null,
            state: State {
                active,
                ..State::default()
            },
        }
    }

    #[test]
    fn appends_in_order_with_a_hash_chain() {
        let t = TempDir::new("events");
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        assert_eq!(head(&b).unwrap().seq, 0);
        let e1 = append(&b, |_| Ok(draft(EventKind::Save, None))).unwrap();
        let e2 = append(&b, |h| {
            assert_eq!(h.seq, 1);
            Ok(draft(EventKind::Promote, Some(1)))
        })
        .unwrap();
        assert_eq!((e1.seq, e2.seq), (1, 2));
        let (_, d1) = read(&b, 1).unwrap().unwrap();
        assert_eq!(e2.prev.as_deref(), Some(d1.as_str()));
        let h = head(&b).unwrap();
        assert_eq!((h.seq, h.state().active), (2, Some(1)));
        assert_eq!(all(&b).unwrap(), vec![e1, e2]);
    }

    #[test]
    fn head_survives_a_stale_missing_or_unreadable_hint() {
        let t = TempDir::new("hint");
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        for _ in 0..3 {
            append(&b, |_| Ok(draft(EventKind::Save, None))).unwrap();
        }
        let (_, d1) = read(&b, 1).unwrap().unwrap();
        let stale = format!("1 {d1}");
        for hint in [
            &b"1"[..],
            stale.as_bytes(),
            b"garbage",
            b"",
            b"0",
            b"2 nothex",
        ] {
            b.replace(&Key::Hint, hint).unwrap();
            assert_eq!(
                head(&b).unwrap().seq,
                3,
                "{:?}",
                String::from_utf8_lossy(hint)
            );
        }
        b.remove(&Key::Hint).unwrap();
        assert_eq!(head(&b).unwrap().seq, 3);
    }

    #[test]
    fn the_anchor_names_the_head_and_its_digest() {
        let t = TempDir::new("anchor");
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        append(&b, |_| Ok(draft(EventKind::Save, None))).unwrap();
        let (_, d1) = read(&b, 1).unwrap().unwrap();
        let anchor = Anchor::parse(&b.read(&Key::Hint, 256).unwrap().unwrap()).unwrap();
        assert_eq!(
            anchor,
            Anchor {
                seq: 1,
                digest: Some(d1)
            }
        );
    }

    #[test]
    fn a_truncated_tail_is_refused_not_silently_reverted() {
        let t = TempDir::new("truncated");
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        for v in 1..=3 {
            append(&b, |_| Ok(draft(EventKind::Promote, Some(v)))).unwrap();
        }
        // A bad sync or restore drops the newest event but keeps ACTIVE.
        std::fs::remove_file(t.0.join(Key::Event(3).path())).unwrap();
        let err = head(&b).unwrap_err();
        assert!(
            matches!(&err, WoodlotError::Store(m) if m.contains("lost") && m.contains("ends at event 2")),
            "{err:?}"
        );
        // Appending on top would overwrite the evidence: refused too.
        assert!(append(&b, |_| Ok(draft(EventKind::Save, None))).is_err());
        assert!(!t.0.join(Key::Event(3).path()).exists());
        // A legacy number-only anchor past the end is the same claim.
        b.replace(&Key::Hint, b"3").unwrap();
        assert!(matches!(head(&b), Err(WoodlotError::Store(_))));
        // Accepting the loss is an explicit act: remove ACTIVE.
        b.remove(&Key::Hint).unwrap();
        assert_eq!(head(&b).unwrap().state().active, Some(2));
    }

    #[test]
    fn readers_and_appenders_refuse_a_head_that_does_not_link_to_its_predecessor() {
        let t = TempDir::new("badlink");
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        for v in 1..=3 {
            append(&b, |_| Ok(draft(EventKind::Promote, Some(v)))).unwrap();
        }
        // Event 3 replaced by one that claims another predecessor (a copy mixed from two
        // stores), with the anchor rewritten to match it: only the chain tells.
        let (mut ev, _) = read(&b, 3).unwrap().unwrap();
        ev.prev = Some("0".repeat(64));
        let bytes = ev.to_bytes();
        std::fs::write(t.0.join(Key::Event(3).path()), &bytes).unwrap();
        b.replace(
            &Key::Hint,
            format!("2 {}", read(&b, 2).unwrap().unwrap().1).as_bytes(),
        )
        .unwrap();
        assert!(matches!(head(&b), Err(WoodlotError::Store(m)) if m.contains("does not link")));
        b.remove(&Key::Hint).unwrap();
        assert!(matches!(head(&b), Err(WoodlotError::Store(m)) if m.contains("does not link")));
        assert!(append(&b, |_| Ok(draft(EventKind::Save, None))).is_err());
        // An anchor whose digest disagrees with the event it names is refused as well.
        b.replace(&Key::Hint, format!("3 {}", "1".repeat(64)).as_bytes())
            .unwrap();
        assert!(matches!(head(&b), Err(WoodlotError::Store(m)) if m.contains("replaced")));
    }

    #[test]
    fn an_event_larger_than_readers_accept_is_refused_before_it_is_written() {
        let t = TempDir::new("bigevent");
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        let big = "x".repeat(MAX_RECORD_LEN as usize + 1);
        let err = append(&b, |_| {
            let mut d = draft(EventKind::Compare, None);
            d.details = Value::String(big.clone());
            Ok(d)
        })
        .unwrap_err();
        assert!(
            matches!(&err, WoodlotError::InvalidInput(m) if m.contains("MAX_RECORD_LEN")),
            "{err:?}"
        );
        assert_eq!(list(&b).unwrap(), Vec::<u64>::new());
        append(&b, |_| Ok(draft(EventKind::Save, None))).unwrap();
        assert_eq!(head(&b).unwrap().seq, 1);
    }

    #[test]
    fn racing_threads_get_distinct_gapless_numbers() {
        let t = TempDir::new("race");
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10 {
                        append(&b, |_| Ok(draft(EventKind::Save, None))).unwrap();
                    }
                });
            }
        });
        let events = all(&b).unwrap();
        assert_eq!(events.len(), 40);
        for w in events.windows(2) {
            let (_, d) = read(&b, w[0].seq).unwrap().unwrap();
            assert_eq!(w[1].prev.as_deref(), Some(d.as_str()));
        }
    }

    #[test]
    fn hostile_events_are_rejected() {
        let ev = Event {
            format: 1,
            seq: 2,
            kind: EventKind::Promote,
            time: String::new(),
            user: String::new(),
            host: String::new(),
            pid: 0,
            version: Some(1),
            reason: None,
            details: Value::Null,
            state: State {
                active: Some(1),
                back: Some(2),
                aliases: BTreeMap::new(),
                deleted: BTreeSet::new(),
            },
            prev: None,
        };
        assert!(
            Event::parse(&ev.to_bytes(), 2).is_err(),
            "back must point earlier"
        );
        assert!(
            Event::parse(&ev.to_bytes(), 3).is_err(),
            "seq must match the file"
        );
        assert!(Event::parse(b"[]", 1).is_err());
        let unknown =
            br#"{"format":1,"seq":1,"kind":"teleport","time":"","user":"","host":"","pid":0,
            "version":null,"reason":null,"state":{"active":null,"back":null},"prev":null}"#;
        assert_eq!(Event::parse(unknown, 1).unwrap().kind, EventKind::Unknown);
    }
}
