//! LiveModel against real local stores: following moves, refusing damaged targets, surviving
//! an unreachable store, and closing without leaving a thread behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ndarray::array;
use serde_json::json;

use crate::error::WoodlotError;
use crate::forest::{FitInfo, Forest, ForestParams};
use crate::format;
use crate::serve::{LiveModel, LiveOptions, NoticeKind};
use crate::store::{Ref, SaveOptions, Store};
use crate::tree::{Node, NodeStats, Tree};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Tests that start watchers take turns, so counting this process's watcher threads is exact.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub(crate) fn turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "woodlot-serve-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A two-feature forest of one stump at `t`: class 1 when `x0 > t`.
pub(crate) fn model(t: f32) -> Vec<u8> {
    let tree = Tree {
        n_classes: 2,
        nodes: vec![Node::split(0, t, 1, 2, true), Node::leaf(0), Node::leaf(1)],
        leaf_values: vec![0.75, 0.25, 0.25, 0.75],
        stats: NodeStats {
            impurity: vec![0.5, 0.2, 0.2],
            n_samples: vec![10, 5, 5],
            weighted_n_samples: vec![10.0, 5.0, 5.0],
        },
    };
    let forest = Forest {
        n_features: 2,
        n_classes: 2,
        output_classes: Vec::new(),
        params: ForestParams {
            n_estimators: 1,
            ..ForestParams::default()
        },
        trees: vec![tree],
        oob: None,
        fit_info: FitInfo {
            training_fingerprint: "0".repeat(64),
            n_samples: 10,
            fit_seconds: 0.01,
        },
        training_histogram: None,
    };
    let estimator = json!({
        "class": "RandomForestClassifier",
        "params": {"n_estimators": 1},
        "classes": {"dtype": "<i8", "values": [0, 1]},
        "n_features_in": 2,
        "feature_names_in": null,
    });
    format::encode(&forest, &estimator).unwrap()
}

/// A store with v1 (threshold 0.5, active) and v2 (threshold 5.0).
fn store_with_two(t: &TempDir) -> Arc<Store> {
    let s = Store::open(&t.0).unwrap();
    s.save(&model(0.5), SaveOptions::default()).unwrap();
    s.save(&model(5.0), SaveOptions::default()).unwrap();
    s.promote(&Ref::Number(1), None, None).unwrap();
    Arc::new(s)
}

fn fast() -> LiveOptions {
    LiveOptions {
        poll: Duration::from_millis(10),
        ..LiveOptions::default()
    }
}

/// Waits until `f` holds, for at most `limit`.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    f()
}

/// Threads of this process named like the watcher.
fn watcher_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .map(|c| c.trim() == "woodlot-live")
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Every file under `dir` whose name contains `needle`.
fn files_named(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_named(&p, needle));
        } else if p.file_name().unwrap().to_string_lossy().contains(needle) {
            out.push(p);
        }
    }
    out
}

#[test]
fn follows_promotions_and_rollbacks() {
    let _turn = turn();
    let t = TempDir::new("follow");
    let store = store_with_two(&t);
    let live = LiveModel::open(store.clone(), Ref::Active, fast()).unwrap();
    let x = array![[1.0f64, 0.0]];
    let (p, served) = live.predict_proba(x.view()).unwrap();
    assert_eq!(served.version(), 1);
    assert_eq!(p[[0, 1]], 0.75);
    store.promote(&Ref::Number(2), None, None).unwrap();
    assert!(eventually(Duration::from_secs(5), || live
        .served()
        .unwrap()
        .version()
        == 2));
    let (p, served) = live.predict_proba(x.view()).unwrap();
    assert_eq!((served.version(), p[[0, 1]]), (2, 0.25));
    store.rollback(None, None).unwrap();
    assert!(eventually(Duration::from_secs(5), || live
        .served()
        .unwrap()
        .version()
        == 1));
    let st = live.status();
    assert_eq!((st.version, st.swaps, st.refused_swaps), (Some(1), 2, 0));
    assert_eq!(st.generation, 3);
    assert!(st.checks >= 3 && st.failed_checks == 0 && st.last_error.is_none());
    let kinds: Vec<_> = live.notices_since(0).0.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NoticeKind::Swapped; 3]);
}

#[test]
fn an_old_handle_keeps_its_model_across_a_swap() {
    let _turn = turn();
    let t = TempDir::new("inflight");
    let store = store_with_two(&t);
    let slow = LiveOptions {
        poll: Duration::from_secs(60),
        ..LiveOptions::default()
    };
    let live = LiveModel::open(store.clone(), Ref::Active, slow).unwrap();
    let before = live.served().unwrap();
    store.promote(&Ref::Number(2), None, None).unwrap();
    assert!(live.refresh().unwrap());
    assert_eq!(live.served().unwrap().version(), 2);
    // The call that started on v1 still predicts with v1.
    let p = before
        .forest
        .predict_proba(array![[1.0f64, 0.0]].view(), 1)
        .unwrap();
    assert_eq!((before.version(), p[[0, 1]]), (1, 0.75));
}

#[test]
fn a_damaged_target_is_refused_and_the_old_model_keeps_serving() {
    let _turn = turn();
    let t = TempDir::new("damaged");
    let store = store_with_two(&t);
    store.set_alias("prod", &Ref::Number(1)).unwrap();
    let live = LiveModel::open(store.clone(), Ref::Alias("prod".into()), fast()).unwrap();
    // v2's blob rots on disk; then the alias moves to it (moving an alias loads nothing).
    let digest = store.get(&Ref::Number(2)).unwrap().blob.digest.clone();
    let hex = digest.rsplit(':').next().unwrap().to_string();
    let blobs = files_named(&t.0, &hex);
    assert_eq!(blobs.len(), 1, "one blob file for v2");
    let mut bytes = std::fs::read(&blobs[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&blobs[0], &bytes).unwrap();
    store.set_alias("prod", &Ref::Number(2)).unwrap();
    assert!(eventually(Duration::from_secs(5), || live
        .status()
        .refused_swaps
        >= 1));
    let st = live.status();
    assert_eq!((st.version, st.target, st.swaps), (Some(1), Some(2), 0));
    assert!(st.last_error.as_deref().unwrap().contains("refused v2"));
    assert_eq!(live.served().unwrap().version(), 1);
    // The watcher leaves the refused target alone until its retry period ends...
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(live.status().refused_swaps, 1);
    // ... and refresh() retries it at once, and says why it failed.
    let err = live.refresh().unwrap_err();
    assert!(matches!(err, WoodlotError::CorruptModel(_)), "{err}");
    assert_eq!(live.status().refused_swaps, 2);
    let refused: Vec<_> = live
        .notices_since(0)
        .0
        .into_iter()
        .filter(|n| n.kind == NoticeKind::Refused)
        .collect();
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0].version, Some(2));
}

#[test]
fn an_unreachable_store_keeps_the_model_and_reports_staleness() {
    let _turn = turn();
    let t = TempDir::new("unreachable");
    let store = store_with_two(&t);
    let live = LiveModel::open(store.clone(), Ref::Active, fast()).unwrap();
    // The whole store goes away (a lost mount): the head anchor cannot be read either.
    let events = t.0.clone();
    let hidden = t.0.with_extension("away");
    std::fs::rename(&events, &hidden).unwrap();
    assert!(eventually(Duration::from_secs(5), || live
        .status()
        .failed_checks
        >= 5));
    let st = live.status();
    assert!(st.staleness_seconds >= 0.03, "{st:?}");
    assert!(st.last_error.is_some());
    assert_eq!(live.served().unwrap().version(), 1);
    let failed = live
        .notices_since(0)
        .0
        .iter()
        .filter(|n| n.kind == NoticeKind::CheckFailed)
        .count();
    assert_eq!(failed, 1, "one notice per streak, not one per poll");
    std::fs::rename(&hidden, &events).unwrap();
    store.promote(&Ref::Number(2), None, None).unwrap();
    assert!(eventually(Duration::from_secs(5), || live
        .served()
        .unwrap()
        .version()
        == 2));
    assert!(live.status().staleness_seconds < 1.0);
    let kinds: Vec<_> = live.notices_since(0).0.iter().map(|n| n.kind).collect();
    assert!(kinds.contains(&NoticeKind::Recovered), "{kinds:?}");
}

#[test]
fn open_needs_a_model_but_start_waits_for_one() {
    let _turn = turn();
    let t = TempDir::new("empty");
    let store = Arc::new(Store::open(&t.0).unwrap());
    let err = LiveModel::open(store.clone(), Ref::Active, fast()).unwrap_err();
    assert!(matches!(err, WoodlotError::VersionNotFound(_)), "{err}");
    let live = LiveModel::start(store.clone(), Ref::Alias("prod".into()), fast()).unwrap();
    assert!(matches!(
        live.served(),
        Err(WoodlotError::VersionNotFound(_))
    ));
    store.save(&model(0.5), SaveOptions::default()).unwrap();
    store.set_alias("prod", &Ref::Number(1)).unwrap();
    assert!(eventually(Duration::from_secs(5), || live.served().is_ok()));
    assert_eq!(live.status().swaps, 0, "the first load is not a swap");
}

#[test]
fn close_is_prompt_and_leaves_no_thread() {
    let _turn = turn();
    let t = TempDir::new("close");
    let store = store_with_two(&t);
    let before = watcher_threads();
    let slow = LiveOptions {
        poll: Duration::from_secs(60),
        ..LiveOptions::default()
    };
    let live = LiveModel::open(store.clone(), Ref::Active, slow).unwrap();
    let dropped = LiveModel::open(store.clone(), Ref::Active, slow).unwrap();
    // A new thread names itself once it runs.
    assert!(eventually(Duration::from_secs(5), || watcher_threads() == before + 2));
    let started = Instant::now();
    live.close();
    assert!(started.elapsed() < Duration::from_millis(500));
    drop(dropped);
    assert_eq!(watcher_threads(), before);
    assert!(live.is_closed() && live.status().closed);
    let err = live.served().unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    assert!(live.epoch().is_err() && live.refresh().is_err());
    live.close();
}

#[test]
fn poll_intervals_outside_the_range_are_refused() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-4, 1e6] {
        assert!(matches!(
            LiveOptions::with_poll_seconds(bad),
            Err(WoodlotError::InvalidParameter { .. })
        ));
    }
    assert_eq!(
        LiveOptions::with_poll_seconds(0.25).unwrap().poll,
        Duration::from_millis(250)
    );
}

/// The read steps (by name) that `f` makes on this thread.
fn reads_of(f: impl FnOnce()) -> Vec<String> {
    crate::store::faults::reset();
    f();
    crate::store::faults::steps()
        .into_iter()
        .map(|s| s.to_string())
        .filter(|s| crate::store::faults::is_read_step(s))
        .collect()
}

#[test]
fn a_check_while_nothing_moves_is_one_small_read() {
    use crate::serve::target::Watch;
    let t = TempDir::new("cheap");
    let store = store_with_two(&t);
    let mut watch = Watch::default();
    let full = reads_of(|| assert_eq!(watch.target(&store, &Ref::Active, None).unwrap(), 1));
    assert!(full.len() > 2, "the first check reads the state: {full:?}");
    // Steady: only ACTIVE is read (open + data), whatever the history's length.
    let steady = reads_of(|| assert_eq!(watch.target(&store, &Ref::Active, Some(1)).unwrap(), 1));
    assert_eq!(steady, ["read_open", "read_data"], "{steady:?}");
    // A move rewrites the anchor, so the next check sees it.
    store.promote(&Ref::Number(2), None, None).unwrap();
    assert_eq!(watch.target(&store, &Ref::Active, Some(1)).unwrap(), 2);
    // An event appended without its anchor (a writer that died between the two) is still
    // found by the periodic full read; here `forget` stands in for the period passing.
    let anchor = std::fs::read(t.0.join("ACTIVE")).unwrap();
    store.promote(&Ref::Number(1), None, None).unwrap();
    std::fs::write(t.0.join("ACTIVE"), &anchor).unwrap();
    assert_eq!(
        watch.target(&store, &Ref::Active, Some(2)).unwrap(),
        2,
        "a hint only"
    );
    watch.forget();
    assert_eq!(watch.target(&store, &Ref::Active, Some(2)).unwrap(), 1);
}

#[test]
fn a_swap_decodes_the_model_once() {
    let t = TempDir::new("decode-once");
    let store = store_with_two(&t);
    // One read of the blob and one of the probes, and the forest comes back with them.
    let (m, bytes, forest) = store.read_verified_model(&Ref::Number(2)).unwrap();
    assert_eq!(m.version, 2);
    let (decoded, _) = format::decode(&bytes).unwrap();
    assert_eq!(forest.trees.len(), decoded.trees.len());
    assert_eq!(forest.trees[0].nodes.len(), decoded.trees[0].nodes.len());
}
