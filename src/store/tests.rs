//! Tests of the store's operations working together (each module also tests itself).

use ndarray::{array, Array2};

use super::faults::{self, FaultMode};
use super::testutil::TempDir;
use super::testutil::{forest_with_threshold, model_bytes, tiny_forest};
use super::*;
use crate::error::WoodlotError;

fn store(tag: &str) -> (TempDir, Store) {
    let t = TempDir::new(tag);
    let s = Store::open(&t.0).unwrap();
    (t, s)
}

fn save(s: &Store, t: f32) -> u64 {
    s.save(
        &model_bytes(&forest_with_threshold(t)),
        SaveOptions::default(),
    )
    .unwrap()
    .version
}

fn num(n: u64) -> Ref {
    Ref::Number(n)
}

/// Eval rows: x0 in 0.0..1.0, y = (x0 > 0.5).
fn eval_data() -> (Array2<f64>, Labels) {
    let xs: Vec<f64> = (0..20).map(|i| i as f64 / 20.0 + 0.025).collect();
    let x = Array2::from_shape_fn((20, 2), |(i, j)| if j == 0 { xs[i] } else { 1.0 });
    let y = Labels::Num(
        xs.iter()
            .map(|v| if *v > 0.5 { 1.0 } else { 0.0 })
            .collect(),
    );
    (x, y)
}

#[test]
fn promote_rollback_walks_the_activation_stack() {
    let (_t, s) = store("stack");
    let (v1, v2, v3) = (save(&s, 0.5), save(&s, 0.3), save(&s, 0.7));
    assert!(s.active().unwrap().is_none());
    assert!(
        matches!(s.rollback(None, None), Err(WoodlotError::Store(m)) if m.contains("nothing to roll back"))
    );
    s.promote(&num(v1), Some("first deploy".into()), Some(Expect::Nothing))
        .unwrap();
    assert!(
        matches!(s.rollback(None, None), Err(WoodlotError::Store(m)) if m.contains("first version"))
    );
    s.promote(&num(v2), None, None).unwrap();
    s.promote(&num(v3), None, None).unwrap();
    assert_eq!(s.get(&Ref::Active).unwrap().version, v3);
    let (m, ev) = s.rollback(None, Some("v3 is bad".into())).unwrap();
    assert_eq!((m.version, ev.kind), (v2, EventKind::Rollback));
    assert_eq!(s.rollback(None, None).unwrap().0.version, v1);
    assert!(s.rollback(None, None).is_err());
    // rollback(to=) jumps, and a plain rollback then returns to where we were.
    assert_eq!(s.rollback(Some(&num(v3)), None).unwrap().0.version, v3);
    assert_eq!(s.rollback(None, None).unwrap().0.version, v1);
    let n_events = s.history().unwrap().len();
    assert_eq!(
        s.rollback(Some(&num(v1)), None).unwrap().0.version,
        v1,
        "already active: a no-op"
    );
    assert_eq!(s.history().unwrap().len(), n_events);
    // Every state is in the history.
    let actives: Vec<Option<u64>> = s
        .history()
        .unwrap()
        .iter()
        .map(|e| e.state.active)
        .collect();
    for v in [v1, v2, v3] {
        assert!(actives.contains(&Some(v)));
    }
    // Saves made while v1 is active name it as their parent.
    let v4 = s
        .save(&model_bytes(&tiny_forest()), SaveOptions::default())
        .unwrap();
    assert_eq!(v4.parent, Some(v1));
}

#[test]
fn stale_expectations_conflict_and_write_nothing() {
    let (_t, s) = store("conflict");
    let (v1, v2, v3) = (save(&s, 0.5), save(&s, 0.3), save(&s, 0.7));
    s.promote(&num(v1), None, Some(Expect::Nothing)).unwrap();
    let before = s.history().unwrap().len();
    assert!(matches!(
        s.promote(&num(v2), None, Some(Expect::Nothing)),
        Err(WoodlotError::Conflict(_))
    ));
    s.promote(&num(v2), None, Some(Expect::Version(v1)))
        .unwrap();
    let err = s
        .promote(&num(v3), None, Some(Expect::Version(v1)))
        .unwrap_err();
    assert!(
        matches!(err, WoodlotError::Conflict(ref m) if m.contains("v2")),
        "{err}"
    );
    assert_eq!(s.history().unwrap().len(), before + 1);
}

#[test]
fn racing_promotions_with_one_expectation_have_one_winner() {
    let (t, s) = store("promote-race");
    let vs: Vec<u64> = (0..4).map(|i| save(&s, 0.2 + 0.1 * i as f32)).collect();
    s.promote(&num(vs[0]), None, None).unwrap();
    let results: Vec<bool> = std::thread::scope(|sc| {
        let handles: Vec<_> = vs[1..]
            .iter()
            .map(|v| {
                let path = t.0.clone();
                sc.spawn(move || {
                    let s = Store::open(path).unwrap();
                    match s.promote(&num(*v), None, Some(Expect::Version(1))) {
                        Ok(_) => true,
                        Err(WoodlotError::Conflict(_)) => false,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|w| **w).count(), 1);
    let promotes = s
        .history()
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Promote)
        .count();
    assert_eq!(promotes, 2);
}

#[test]
fn aliases_resolve_and_are_validated() {
    let (_t, s) = store("alias");
    let (v1, v2) = (save(&s, 0.5), save(&s, 0.3));
    s.set_alias("champion", &num(v1)).unwrap();
    assert_eq!(s.get(&Ref::parse("champion").unwrap()).unwrap().version, v1);
    s.set_alias("champion", &num(v2)).unwrap();
    assert_eq!(s.state().unwrap().aliases["champion"], v2);
    for bad in ["../x", "a/b", "", "latest", "v7", "x\u{202e}"] {
        assert!(
            matches!(
                s.set_alias(bad, &num(v1)),
                Err(WoodlotError::InvalidName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        s.set_alias("ok", &num(9)),
        Err(WoodlotError::VersionNotFound(_))
    ));
    s.remove_alias("champion").unwrap();
    assert!(matches!(
        s.remove_alias("champion"),
        Err(WoodlotError::VersionNotFound(_))
    ));
    assert!(matches!(
        s.get(&Ref::parse("champion").unwrap()),
        Err(WoodlotError::VersionNotFound(_))
    ));
}

#[test]
fn delete_guards_the_active_version_and_never_reuses_numbers() {
    let (t, s) = store("delete");
    let (v1, v2, v3) = (save(&s, 0.5), save(&s, 0.3), save(&s, 0.7));
    s.promote(&num(v1), None, None).unwrap();
    s.set_alias("canary", &num(v2)).unwrap();
    assert!(matches!(
        s.delete(&num(v1), false, None),
        Err(WoodlotError::Store(_))
    ));
    assert!(matches!(
        s.delete(&num(v2), false, None),
        Err(WoodlotError::Store(_))
    ));
    s.delete(&num(v3), false, Some("bad data".into())).unwrap();
    assert!(
        matches!(s.get(&num(v3)), Err(WoodlotError::VersionNotFound(m)) if m.contains("deleted"))
    );
    assert_eq!(save(&s, 0.9), 4, "numbers are never reused");
    s.delete(&num(v2), true, None).unwrap();
    assert!(s.state().unwrap().aliases.is_empty());
    let report = s.gc(false, 0.0).unwrap();
    assert!(
        report.removed.iter().any(|i| i.path.starts_with("blobs/")),
        "{report:?}"
    );
    assert!(s.verify().unwrap().ok);
    // Force-deleting the active version leaves nothing active; rollback can still go back.
    s.promote(&num(4), None, None).unwrap();
    s.delete(&num(4), true, None).unwrap();
    assert!(s.active().unwrap().is_none());
    assert_eq!(s.rollback(None, None).unwrap().0.version, v1);
    let v = s.verify().unwrap();
    assert!(v.ok, "{:?}", v.problems);
    drop(t);
}

#[test]
fn compare_and_promote_if_better() {
    let (_t, s) = store("compare");
    let v1 = save(&s, 0.2); // wrong for x0 in (0.2, 0.5]
    let v2 = save(&s, 0.5); // right everywhere
    let (x, y) = eval_data();
    s.promote(&num(v1), None, None).unwrap();
    let cmp = s
        .compare(x.view(), &y, None, &CompareOptions::default())
        .unwrap();
    assert_eq!(cmp.best, v2);
    assert!(cmp.eval(v2).unwrap().metrics.accuracy > cmp.eval(v1).unwrap().metrics.accuracy);
    let p = cmp.pairwise(v2, v1).unwrap();
    assert_eq!(p.b_only_correct.len(), 0);
    assert!(!p.a_only_correct.is_empty() && p.mcnemar_p < 1.0);
    assert!(cmp.event_seq.is_some());
    let json = cmp.to_json(true);
    assert_eq!(json["best"], "v2");
    assert!(json["metrics"]["v1"]["confusion_matrix"].is_array());

    // alpha too strict: kept; then without alpha: promoted, with the comparison as evidence.
    let d = s
        .promote_if_better(
            &num(v2),
            x.view(),
            &y,
            "accuracy",
            0.0,
            Some(1e-9),
            None,
            &CompareOptions::default(),
        )
        .unwrap();
    assert!(!d.promoted && d.reason.contains("kept v1"), "{}", d.reason);
    assert_eq!(s.get(&Ref::Active).unwrap().version, v1);
    let d = s
        .promote_if_better(
            &num(v2),
            x.view(),
            &y,
            "accuracy",
            0.0,
            None,
            None,
            &CompareOptions::default(),
        )
        .unwrap();
    assert!(d.promoted, "{}", d.reason);
    assert_eq!(s.get(&Ref::Active).unwrap().version, v2);
    let ev = s
        .history()
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.kind == EventKind::Promote)
        .unwrap();
    assert!(ev.details["evidence"]["compare_event"].is_u64());
    assert_eq!(ev.details["decision"]["metric"], "accuracy");
    // Log loss goes the other way; a candidate that is worse is kept out.
    let d = s
        .promote_if_better(
            &num(v1),
            x.view(),
            &y,
            "log_loss",
            0.0,
            None,
            None,
            &CompareOptions::default(),
        )
        .unwrap();
    assert!(!d.promoted);
    assert!(s
        .promote_if_better(
            &num(v1),
            x.view(),
            &y,
            "auc",
            0.0,
            None,
            None,
            &CompareOptions::default()
        )
        .is_err());
}

#[test]
fn compare_rejects_bad_input_clearly() {
    let (_t, s) = store("compare-bad");
    let (x, y) = eval_data();
    assert!(matches!(
        s.compare(x.view(), &y, None, &CompareOptions::default()),
        Err(WoodlotError::VersionNotFound(_))
    ));
    save(&s, 0.5);
    let wide = Array2::<f64>::zeros((20, 3));
    assert!(matches!(
        s.compare(wide.view(), &y, None, &CompareOptions::default()),
        Err(WoodlotError::InvalidInput(_))
    ));
    let short = Labels::Num(vec![0.0; 3]);
    assert!(matches!(
        s.compare(x.view(), &short, None, &CompareOptions::default()),
        Err(WoodlotError::InvalidInput(_))
    ));
    // Labels the model never saw count as errors, they do not fail the comparison.
    let strange = Labels::Str(vec!["cat".into(); 20]);
    let cmp = s
        .compare(
            x.view(),
            &strange,
            None,
            &CompareOptions {
                record: false,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(cmp.evals[0].metrics.accuracy, 0.0);
    assert_eq!(cmp.evals[0].metrics.n_unknown_labels, 20);
    assert_eq!(cmp.event_seq, None);
    let one = array![[0.9, 0.0]];
    s.compare(
        one.view(),
        &Labels::Num(vec![1.0]),
        None,
        &CompareOptions::default(),
    )
    .unwrap();
}

#[test]
fn verify_finds_damage_and_rollback_refuses_it() {
    let (t, s) = store("verify");
    let (v1, v2) = (save(&s, 0.5), save(&s, 0.3));
    s.promote(&num(v1), None, None).unwrap();
    s.promote(&num(v2), None, None).unwrap();
    assert!(s.verify().unwrap().ok);
    // Replace v1's probe blob with one whose probabilities differ.
    let m = s.manifest(v1).unwrap();
    let probe_path =
        t.0.join(layout::Key::Blob(m.probe_digest().unwrap()).path());
    let mut p = probe::ProbeSet::decode(&std::fs::read(&probe_path).unwrap()).unwrap();
    p.proba[[0, 0]] += 1e-12;
    std::fs::write(&probe_path, p.encode()).unwrap();
    let report = s.verify().unwrap();
    assert!(!report.ok);
    assert_eq!(report.problems[0].subject, "v1");
    let err = s.rollback(None, None).unwrap_err();
    assert!(
        matches!(err, WoodlotError::CorruptModel(ref m) if m.contains("refusing to roll back")),
        "{err}"
    );
    assert_eq!(
        s.get(&Ref::Active).unwrap().version,
        v2,
        "a failed rollback moves nothing"
    );
    // An edited event breaks the hash chain.
    let ev_path = t.0.join(layout::Key::Event(1).path());
    let text = std::fs::read_to_string(&ev_path)
        .unwrap()
        .replace("\"pid\"", "\"pid\" ");
    std::fs::write(&ev_path, text).unwrap();
    assert!(s
        .verify()
        .unwrap()
        .problems
        .iter()
        .any(|p| p.message.contains("link")));
}

#[test]
fn an_injected_fault_at_every_step_of_save_and_promote_leaves_old_or_new() {
    let (_t, s) = store("faults");
    let v1 = save(&s, 0.5);
    s.promote(&num(v1), None, None).unwrap();
    let bytes = model_bytes(&forest_with_threshold(0.3));
    // Count the steps of one save and one promote.
    faults::reset();
    let v = s.save(&bytes, SaveOptions::default()).unwrap().version;
    let save_steps = faults::steps().len() as u64;
    faults::reset();
    s.promote(&num(v), None, None).unwrap();
    let promote_steps = faults::steps().len() as u64;
    faults::reset();
    assert!(
        save_steps >= 10 && promote_steps >= 5,
        "{save_steps} {promote_steps}"
    );

    for at in 1..=save_steps + 2 {
        let before = s.versions().unwrap().len();
        let fresh = model_bytes(&forest_with_threshold(0.31 + at as f32 * 0.001));
        faults::arm(at, FaultMode::Error);
        let r = s.save(&fresh, SaveOptions::default());
        faults::reset();
        let after = s.versions().unwrap().len();
        assert!(after == before || after == before + 1, "step {at}");
        if r.is_ok() {
            assert_eq!(after, before + 1, "step {at}: success without a version");
        }
        if after == before + 1 {
            s.read_model(&Ref::Latest, true).unwrap();
        }
        let report = s.verify().unwrap();
        assert!(report.ok, "step {at}: {:?}", report.problems);
    }
    for at in 1..=promote_steps + 2 {
        let before = s.state().unwrap().active;
        let target = if before == Some(v1) { v } else { v1 };
        faults::arm(at, FaultMode::Error);
        let r = s.promote(&num(target), None, None);
        faults::reset();
        let after = s.state().unwrap().active;
        assert!(after == before || after == Some(target), "step {at}");
        if r.is_ok() {
            assert_eq!(after, Some(target));
        }
        assert!(s.verify().unwrap().ok, "step {at}");
    }
    let report = s.gc(false, 0.0).unwrap();
    assert!(report.skipped.is_empty());
    assert!(s.backend.list(layout::Dir::Tmp).unwrap().is_empty());
}

#[test]
fn hostile_store_files_never_escape_or_panic() {
    let (t, s) = store("hostile");
    let v1 = save(&s, 0.5);
    let m = std::fs::read_to_string(t.0.join(layout::Key::Manifest(v1).path())).unwrap();
    let evil = m.replacen(
        &s.manifest(v1).unwrap().blob.digest,
        "../../../../etc/passwd",
        1,
    );
    std::fs::write(t.0.join(layout::Key::Manifest(2).path()), evil).unwrap();
    assert!(matches!(s.get(&num(2)), Err(WoodlotError::CorruptModel(_))));
    assert!(!s.verify().unwrap().ok);
    let report = s.gc(false, 0.0).unwrap();
    assert!(
        !report.skipped.is_empty(),
        "gc must not collect blobs it cannot account for"
    );
    s.read_model(&num(v1), true).unwrap();
    std::fs::write(t.0.join("ACTIVE"), b"\xff\xfe garbage").unwrap();
    assert_eq!(s.history().unwrap().len(), 1);
    std::fs::write(t.0.join(layout::Key::Event(2).path()), b"{\"format\": 1").unwrap();
    assert!(matches!(s.state(), Err(WoodlotError::CorruptModel(_))));
}

#[test]
fn records_numbered_u64_max_do_not_wrap_numbers_around_to_zero() {
    // A damaged or foreign manifest named with the largest number: the next save must fail
    // rather than write version 0, which no listing shows.
    let (t, s) = store("u64max");
    let v = save(&s, 0.5);
    let manifest = std::fs::read(t.0.join(format!("versions/{v:010}.json"))).unwrap();
    std::fs::write(t.0.join(format!("versions/{}.json", u64::MAX)), manifest).unwrap();
    let err = s
        .save(
            &model_bytes(&forest_with_threshold(0.25)),
            SaveOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, WoodlotError::CorruptModel(_)), "{err:?}");
    assert!(!t.0.join("versions/0000000000.json").exists());

    // The same for the history: an event numbered u64::MAX (and no hint to skip it).
    let (t, s) = store("u64max-events");
    let v = save(&s, 0.5);
    let mut event: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.0.join("events/000000000001.json")).unwrap())
            .unwrap();
    event["seq"] = serde_json::json!(u64::MAX);
    std::fs::write(
        t.0.join(format!("events/{}.json", u64::MAX)),
        serde_json::to_vec(&event).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(t.0.join("ACTIVE")).unwrap();
    let err = s.promote(&num(v), None, None).unwrap_err();
    assert!(matches!(err, WoodlotError::CorruptModel(_)), "{err:?}");
    assert!(!t.0.join("events/000000000000.json").exists());
}
