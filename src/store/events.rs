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
//! `ACTIVE` at the root holds the newest event number as a hint. It only saves a directory
//! listing: readers start from it and step forward while the next event exists.

use std::collections::BTreeMap;

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

/// Finds the newest event: from the hint, stepping forward while the next event exists; from a
/// listing if the hint is missing, unreadable or points past the end.
pub fn head(backend: &dyn Backend) -> Result<Head> {
    let hinted = backend.read(&Key::Hint, 64).ok().flatten().and_then(|b| {
        std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    });
    let mut seq = match hinted {
        Some(h) if h > 0 && backend.exists(&Key::Event(h))? => h,
        _ => list(backend)?.last().copied().unwrap_or(0),
    };
    while let Some(next) = seq.checked_add(1) {
        if !backend.exists(&Key::Event(next))? {
            break;
        }
        seq = next;
    }
    if seq == 0 {
        return Ok(Head::default());
    }
    match read(backend, seq)? {
        Some((event, digest)) => Ok(Head {
            seq,
            event: Some(event),
            digest: Some(digest),
        }),
        None => Err(WoodlotError::corrupt(format!(
            "event {seq} vanished while being read"
        ))),
    }
}

/// Appends an event. `make` sees the current head and returns the draft (or an error, e.g. a
/// conflict); if another writer takes the number first, the head is re-read and `make` runs
/// again, so a draft is always computed from the state it follows.
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
        if backend.create_new(&Key::Event(event.seq), &event.to_bytes())? {
            // Only a hint: if this fails (or lands after a newer writer's), readers step forward.
            let _ = backend.replace(&Key::Hint, event.seq.to_string().as_bytes());
            return Ok(event);
        }
    }
    Err(WoodlotError::Conflict(format!(
        "could not append to the history after {MAX_APPEND_ATTEMPTS} attempts; other writers keep winning"
    )))
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
    fn head_survives_a_stale_missing_or_lying_hint() {
        let t = TempDir::new("hint");
        let b = LocalBackend::new(&t.0).unwrap();
        b.ensure_dirs().unwrap();
        for _ in 0..3 {
            append(&b, |_| Ok(draft(EventKind::Save, None))).unwrap();
        }
        for hint in [&b"1"[..], b"999", b"garbage", b""] {
            b.replace(&Key::Hint, hint).unwrap();
            assert_eq!(head(&b).unwrap().seq, 3);
        }
        b.remove(&Key::Hint).unwrap();
        assert_eq!(head(&b).unwrap().seq, 3);
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
