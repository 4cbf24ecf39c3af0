//! The store's side of deployment guards (`crate::guard`): their events and their records.
//!
//! A guard's decisions belong in the history (`guard_started`, `guard_decided` events, which
//! leave the state as they found it), and its bulk data beside it: prediction-log segments,
//! outcome segments and the one decision claim, each a create-only record under `guard/`
//! (layout: `guard/<guard>-<p|o|d>-<n>.json`). Create-only writes are what both backends
//! offer, so the same code logs to a directory and to S3, and two processes appending segments
//! race for numbers exactly as savers race for versions: one wins, the other takes the next.
//!
//! The store knows nothing of what the records mean (that is the guard layer's); it only
//! names, bounds and lists them.

use serde_json::Value;

use crate::error::{Result, WoodlotError};
use crate::store::events::{self, check_record_len, Draft, Event, EventKind};
use crate::store::layout::{Dir, GuardPart, Key};
use crate::store::names::validate_text;
use crate::store::Store;

/// Largest guard record this woodlot writes or reads (segments are bounded well below it).
pub const MAX_GUARD_RECORD_LEN: u64 = 8 << 20;

impl Store {
    /// Appends a guard event (`guard_started` or `guard_decided`) that leaves the state as it
    /// finds it: the moves a guard causes (promote, rollback) are their own, ordinary events.
    pub fn append_guard_event(
        &self,
        kind: EventKind,
        version: Option<u64>,
        reason: Option<String>,
        details: Value,
    ) -> Result<Event> {
        if !matches!(kind, EventKind::GuardStarted | EventKind::GuardDecided) {
            return Err(WoodlotError::input(format!(
                "append_guard_event writes guard events only, not {}",
                kind.as_str()
            )));
        }
        if let Some(r) = &reason {
            validate_text("reason", r, 10_000)?;
        }
        let _lock = self.backend.lock()?;
        events::append(&*self.backend, |head| {
            Ok(Draft {
                kind,
                version,
                reason: reason.clone(),
                details: details.clone(),
                state: head.state(),
            })
        })
    }

    /// Appends guard `guard`'s `guard_decided` event unless the history already holds one
    /// (`None` then). The check runs against the head of every append attempt, and events are
    /// create-only, so of two processes completing the same claimed decision at once exactly
    /// one writes the event.
    pub fn append_guard_decided_once(
        &self,
        guard: u64,
        version: Option<u64>,
        reason: Option<String>,
        details: Value,
    ) -> Result<Option<Event>> {
        if let Some(r) = &reason {
            validate_text("reason", r, 10_000)?;
        }
        let _lock = self.backend.lock()?;
        let mut already = false;
        let mut checked = guard;
        let appended = events::append(&*self.backend, |head| {
            for seq in checked + 1..=head.seq {
                if let Some((e, _)) = events::read(&*self.backend, seq)? {
                    let same = e.details.get("guard").and_then(Value::as_u64) == Some(guard);
                    if e.kind == EventKind::GuardDecided && same {
                        already = true;
                        return Err(WoodlotError::Store("decided already".into()));
                    }
                }
                checked = seq;
            }
            Ok(Draft {
                kind: EventKind::GuardDecided,
                version,
                reason: reason.clone(),
                details: details.clone(),
                state: head.state(),
            })
        });
        match appended {
            Ok(e) => Ok(Some(e)),
            Err(_) if already => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates record `seq` of a guard's `part`, create-only: `false` when that number is
    /// taken (another writer won; take the next one).
    pub fn create_guard_record(
        &self,
        guard: u64,
        part: GuardPart,
        seq: u64,
        bytes: &[u8],
    ) -> Result<bool> {
        if bytes.len() as u64 > MAX_GUARD_RECORD_LEN {
            return Err(WoodlotError::input(format!(
                "a guard record would be {} bytes, more than the {MAX_GUARD_RECORD_LEN} readers \
                 accept; it was not written (log smaller segments)",
                bytes.len()
            )));
        }
        check_record_len("a guard record", bytes.len())?;
        self.backend.ensure_dir(Dir::Guard)?;
        self.backend
            .create_new(&Key::Guard { guard, part, seq }, bytes)
    }

    /// The numbers of a guard's records of one part, ascending.
    pub fn guard_records(&self, guard: u64, part: GuardPart) -> Result<Vec<u64>> {
        let mut out: Vec<u64> = self
            .backend
            .list(Dir::Guard)?
            .iter()
            .filter_map(|e| match Key::from_listing(Dir::Guard, &e.name) {
                Some(Key::Guard {
                    guard: g,
                    part: p,
                    seq,
                }) if g == guard && p == part => Some(seq),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Reads one guard record, `None` if it does not exist.
    pub fn read_guard_record(
        &self,
        guard: u64,
        part: GuardPart,
        seq: u64,
    ) -> Result<Option<Vec<u8>>> {
        self.backend
            .read(&Key::Guard { guard, part, seq }, MAX_GUARD_RECORD_LEN)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::store::events::EventKind;
    use crate::store::testutil::TempDir;
    use crate::store::Store;

    #[test]
    fn a_guards_decided_event_is_written_once() {
        let t = TempDir::new("guard-decided-once");
        let s = Store::open(&t.0).unwrap();
        let started = s
            .append_guard_event(EventKind::GuardStarted, None, None, json!({}))
            .unwrap();
        let other = started.seq + 1000;
        let first = s
            .append_guard_decided_once(started.seq, None, None, json!({"guard": started.seq}))
            .unwrap();
        assert!(first.is_some());
        let again = s
            .append_guard_decided_once(started.seq, None, None, json!({"guard": started.seq}))
            .unwrap();
        assert!(again.is_none(), "the second completion writes nothing");
        // Another guard's decision is not this one's.
        assert!(s
            .append_guard_decided_once(other, None, None, json!({"guard": other}))
            .unwrap()
            .is_some());
        let decided = s
            .history()
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::GuardDecided)
            .count();
        assert_eq!(decided, 2);
    }
}
