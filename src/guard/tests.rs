//! The guard's tests: the statistics against direct formulas, the simulation's promises, and
//! the whole loop on a real store (start, score, log, record outcomes, decide, replay).

use std::sync::Arc;

use ndarray::Array2;

use super::confseq::{psi_e, EbConfSeq, TRUNCATION};
use super::decide::{Metric, Pair, Sequential, TestSpec, Verdict, DEFAULT_CLIP};
use super::mcnemar;
use super::predlog::SegmentLimits;
use super::runner::{record_outcomes, Guard, StartOptions};
use super::sim::{simulate, SimSpec};
use super::state::{self, DecisionKind, Mode};
use crate::rng::Rng;
use crate::store::labels::Labels;
use crate::store::testutil::{forest_with_threshold, model_bytes, TempDir};
use crate::store::{EventKind, GuardPart, Ref, SaveOptions, Store};

fn spec(metric: Metric, margin: f64, min_outcomes: u64) -> TestSpec {
    TestSpec {
        metric,
        alpha: 0.05,
        margin,
        min_outcomes,
        clip: DEFAULT_CLIP,
    }
}

#[test]
fn the_confidence_sequence_matches_the_papers_formulas_term_by_term() {
    let mut rng = Rng::new(7);
    let xs: Vec<f64> = (0..500).map(|_| rng.unit_f64().powi(2)).collect();
    let alpha: f64 = 0.05;
    let mut cs = EbConfSeq::new(alpha).unwrap();
    // Direct, non-incremental evaluation of Waudby-Smith & Ramdas's PrPl-EB at each t.
    let (mut sl, mut slx, mut svp) = (0.0, 0.0, 0.0);
    for t in 1..=xs.len() {
        let past = &xs[..t - 1];
        let mu = |k: usize| (0.5 + xs[..k].iter().sum::<f64>()) / (k as f64 + 1.0);
        let sigma2 = (0.25
            + (1..=past.len())
                .map(|i| (xs[i - 1] - mu(i)).powi(2))
                .sum::<f64>())
            / (past.len() as f64 + 1.0);
        let lambda = (2.0 * (1.0 / alpha).ln() / (sigma2 * t as f64 * (1.0 + t as f64).ln()))
            .sqrt()
            .min(TRUNCATION);
        let x = xs[t - 1];
        sl += lambda;
        slx += lambda * x;
        svp += 4.0 * (x - mu(t - 1)).powi(2) * ((-(1.0 - lambda).ln() - lambda) / 4.0);
        cs.push(x);
        let lower = ((slx - (1.0 / alpha).ln() - svp) / sl).max(0.0);
        let upper = ((slx + (1.0 / alpha).ln() + svp) / sl).min(1.0);
        assert!((cs.lower() - lower).abs() < 1e-9, "t={t}");
        assert!((cs.upper() - upper).abs() < 1e-9, "t={t}");
    }
    // The bound and the e-value are one statement: lower > m  <=>  E(m) >= 1/alpha.
    for m in [0.1, 0.2, 0.3, cs.lower() - 1e-6, cs.lower() + 1e-6] {
        assert_eq!(
            cs.lower() > m,
            cs.log_e_above(m) >= (1.0 / alpha).ln(),
            "m={m}"
        );
    }
    assert!((psi_e(0.5) - (-(0.5f64).ln() - 0.5) / 4.0).abs() < 1e-15);
    // It covers the mean of this stream (E[U^2] = 1/3).
    assert!(cs.lower() < 1.0 / 3.0 && 1.0 / 3.0 < cs.upper());
}

#[test]
fn the_mcnemar_e_value_is_the_grid_average_of_likelihood_ratios() {
    for (b, c) in [(0, 0), (5, 1), (1, 5), (30, 12), (200, 150)] {
        let direct: f64 = mcnemar::grid()
            .iter()
            .map(|p| (2.0 * p).powi(b) * (2.0 * (1.0 - p)).powi(c))
            .sum::<f64>()
            / mcnemar::GRID as f64;
        let got = mcnemar::log_e_value(b as u64, c as u64).exp();
        assert!((got - direct).abs() <= 1e-9 * direct.max(1.0), "{b} {c}");
    }
    assert!(
        mcnemar::log_e_value(0, 0).abs() < 1e-12,
        "no evidence is e = 1"
    );
}

#[test]
fn a_decision_is_frozen_at_the_first_crossing() {
    let s = spec(Metric::Accuracy, 0.0, 10);
    let mut t = Sequential::new(s).unwrap();
    let worse = Pair {
        loss_candidate: 1.0,
        loss_baseline: 0.0,
        correct_candidate: false,
        correct_baseline: true,
    };
    let mut n = 0;
    while t.push(worse) == Verdict::Continue {
        n += 1;
        assert!(n < 1000);
    }
    let at = t.evidence();
    assert_eq!(at.verdict, Verdict::Worse);
    assert!(at.e_value >= 20.0);
    // Later pairs, even ones that would pull the evidence back, change nothing.
    let better = Pair {
        loss_candidate: 0.0,
        loss_baseline: 1.0,
        correct_candidate: true,
        correct_baseline: false,
    };
    for _ in 0..50 {
        assert_eq!(t.push(better), Verdict::Worse);
    }
    assert_eq!(t.evidence(), at);
}

#[test]
fn bad_settings_are_refused_with_the_parameter_named() {
    for (s, name) in [
        (
            TestSpec {
                alpha: 0.0,
                ..spec(Metric::LogLoss, 0.0, 1)
            },
            "alpha",
        ),
        (
            TestSpec {
                alpha: f64::NAN,
                ..spec(Metric::LogLoss, 0.0, 1)
            },
            "alpha",
        ),
        (spec(Metric::Accuracy, 1.5, 1), "margin"),
        (spec(Metric::LogLoss, -0.1, 1), "margin"),
        (
            TestSpec {
                clip: 0.0,
                ..spec(Metric::LogLoss, 0.0, 1)
            },
            "clip",
        ),
    ] {
        match Sequential::new(s) {
            Err(crate::error::WoodlotError::InvalidParameter { name: n, .. }) => {
                assert_eq!(n, name)
            }
            other => panic!("{s:?}: {other:?}"),
        }
    }
}

fn sim(metric: Metric, delta: f64, streams: usize, max_outcomes: u64) -> super::sim::SimResult {
    simulate(&SimSpec {
        streams,
        max_outcomes,
        test: spec(metric, 0.0, 200),
        base_accuracy: 0.85,
        delta,
        discordance: 0.12,
        seed: 11,
    })
    .unwrap()
}

/// alpha plus three binomial standard errors over `n` streams.
fn slack(n: u64) -> f64 {
    0.05 + 3.0 * (0.05 * 0.95 / n as f64).sqrt()
}

#[test]
fn equally_good_models_are_rolled_back_at_most_alpha_of_the_time_checked_after_every_outcome() {
    for metric in [Metric::Accuracy, Metric::LogLoss] {
        let r = sim(metric, 0.0, 1000, 3000);
        let rate = r.rolled_back as f64 / r.streams as f64;
        eprintln!(
            "{metric:?}: {} of {} streams rolled back",
            r.rolled_back, r.streams
        );
        assert!(
            rate <= slack(r.streams),
            "{metric:?}: false rollback rate {rate}"
        );
    }
}

#[test]
fn a_candidate_three_points_worse_is_rolled_back_and_the_outcomes_needed_are_reported() {
    for metric in [Metric::Accuracy, Metric::LogLoss] {
        let r = sim(metric, 0.03, 200, 20_000);
        let mut at = r.rollback_at.clone();
        at.sort_unstable();
        eprintln!(
            "{metric:?}: rolled back {} of {}; outcomes needed median {} max {}",
            r.rolled_back,
            r.streams,
            at[at.len() / 2],
            at[at.len() - 1]
        );
        assert_eq!(r.confirmed, 0, "{metric:?}");
        assert!(
            r.rolled_back as f64 >= 0.95 * r.streams as f64,
            "{metric:?}: {r:?}"
        );
    }
}

#[test]
fn a_candidate_three_points_better_is_never_rolled_back_and_is_confirmed() {
    for metric in [Metric::Accuracy, Metric::LogLoss] {
        let r = sim(metric, -0.03, 500, 20_000);
        assert_eq!(r.rolled_back, 0, "{metric:?}");
        assert!(
            r.confirmed as f64 >= 0.95 * r.streams as f64,
            "{metric:?}: {r:?}"
        );
        assert!(r.confirm_at.iter().all(|n| *n >= 200), "min_outcomes holds");
    }
}

// --- the loop on a real store ------------------------------------------------------------

/// A store with v1 (the truth's threshold, 0.5) active and v2 (threshold 0.8: worse) saved.
fn store_with_two() -> (TempDir, Arc<Store>) {
    let t = TempDir::new("guard");
    let s = Store::open(&t.0).unwrap();
    s.save(
        &model_bytes(&forest_with_threshold(0.5)),
        SaveOptions::default(),
    )
    .unwrap();
    s.promote(&Ref::Number(1), None, None).unwrap();
    s.save(
        &model_bytes(&forest_with_threshold(0.8)),
        SaveOptions::default(),
    )
    .unwrap();
    (t, Arc::new(s))
}

/// Rows and their labels: class 1 when x0 > 0.5.
fn rows(n: usize, seed: u64) -> (Array2<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x = Array2::from_shape_fn((n, 2), |_| rng.unit_f64());
    let y = x.column(0).iter().map(|v| f64::from(*v > 0.5)).collect();
    (x, y)
}

fn small_segments() -> SegmentLimits {
    SegmentLimits {
        max_rows: 50,
        ..SegmentLimits::default()
    }
}

#[test]
fn a_worse_candidate_on_probation_is_rolled_back_with_the_evidence_in_the_history() {
    let (_t, store) = store_with_two();
    let mut opts = StartOptions::new(Ref::Number(2));
    opts.metric = Metric::Accuracy;
    let g = Guard::start(store.clone(), opts, small_segments()).unwrap();
    assert_eq!(store.state().unwrap().active, Some(2), "probation promotes");
    let mut decided = None;
    for round in 0..40 {
        let (x, y) = rows(100, 100 + round);
        let scored = g.score(x.view(), None).unwrap();
        assert!(
            scored.served.iter().all(|v| *v == 2),
            "the candidate answers"
        );
        g.flush().unwrap();
        let rep = record_outcomes(&store, None, &scored.ids, &Labels::Num(y)).unwrap();
        assert_eq!((rep.recorded, rep.unknown, rep.duplicate), (100, 0, 0));
        let st = g.check().unwrap();
        if let Some(d) = st.decision {
            decided = Some(d);
            break;
        }
    }
    let d = decided.expect("the worse candidate is caught within 4000 outcomes");
    assert_eq!(d.decision, DecisionKind::RolledBack);
    assert!(d.evidence.e_value >= 20.0 && d.evidence.baseline_only_right > 0);
    assert_eq!(store.state().unwrap().active, Some(1), "back on v1");
    let h = store.history().unwrap();
    let kinds: Vec<EventKind> = h.iter().map(|e| e.kind).collect();
    let n = kinds.len();
    assert_eq!(
        &kinds[n - 2..],
        &[EventKind::Rollback, EventKind::GuardDecided],
        "{kinds:?}"
    );
    assert_eq!(d.action_event, Some(h[n - 2].seq));
    let rec = state::guard(&store, g.spec().guard).unwrap();
    assert_eq!(rec.decision.unwrap().evidence, d.evidence);
    // After the decision the guard answers with the baseline and logs nothing more.
    let before = store
        .guard_records(g.spec().guard, GuardPart::Predictions)
        .unwrap();
    let (x, _) = rows(10, 1);
    assert!(g
        .score(x.view(), None)
        .unwrap()
        .served
        .iter()
        .all(|v| *v == 1));
    g.flush().unwrap();
    assert_eq!(
        store
            .guard_records(g.spec().guard, GuardPart::Predictions)
            .unwrap(),
        before
    );
}

#[test]
fn a_reopened_guard_resumes_with_every_prediction_and_outcome() {
    let (_t, store) = store_with_two();
    let mut opts = StartOptions::new(Ref::Number(2));
    opts.mode = Mode::Shadow;
    let g = Guard::start(store.clone(), opts, small_segments()).unwrap();
    let id = g.spec().guard;
    let (x, y) = rows(120, 5);
    let scored = g.score(x.view(), None).unwrap();
    assert!(
        scored.served.iter().all(|v| *v == 1),
        "shadow: the active answers"
    );
    drop(g); // the buffered rows are written on drop
    let segs = store.guard_records(id, GuardPart::Predictions).unwrap();
    assert_eq!(segs, vec![1, 2, 3], "120 rows in segments of at most 50");
    let rep = record_outcomes(
        &store,
        Some(id),
        &scored.ids[..80],
        &Labels::Num(y[..80].to_vec()),
    )
    .unwrap();
    assert_eq!(rep.recorded, 80);
    let reopened = Guard::open(store.clone(), id, small_segments()).unwrap();
    let st = reopened.status().unwrap();
    assert_eq!(
        (
            st.predictions_logged,
            st.outcomes_recorded,
            st.outcomes_joined
        ),
        (120, 80, 80)
    );
    assert!(st.running);
    // Duplicate and unknown ids are counted, not fatal.
    let ids = vec![
        scored.ids[0].clone(),
        "nope".to_string(),
        scored.ids[100].clone(),
    ];
    let rep = reopened
        .record_outcomes(&ids, &Labels::Num(vec![1.0, 0.0, 1.0]))
        .unwrap();
    assert_eq!((rep.recorded, rep.unknown, rep.duplicate), (2, 1, 1));
    assert_eq!(rep.unknown_ids, vec!["nope".to_string()]);
    let st = reopened.status().unwrap();
    assert_eq!((st.outcomes_joined, st.outcomes_unmatched), (81, 1));
}

#[test]
fn a_decision_claimed_by_a_dead_process_is_finished_by_the_next_one() {
    let (_t, store) = store_with_two();
    let g = Guard::start(
        store.clone(),
        StartOptions::new(Ref::Number(2)),
        small_segments(),
    )
    .unwrap();
    let id = g.spec().guard;
    let st = g.status().unwrap();
    // A process claims "rolled back" and dies before the rollback and the event.
    let d = state::DecisionRecord {
        guard: id,
        decision: DecisionKind::RolledBack,
        evidence: st.evidence,
        active: Some(2),
        reason: "test".into(),
        action_event: None,
    };
    assert!(state::claim(&store, &d).unwrap().is_none());
    assert!(
        state::claim(&store, &d).unwrap().is_some(),
        "a claim is made once"
    );
    assert_eq!(store.state().unwrap().active, Some(2));
    let reopened = Guard::open(store.clone(), id, small_segments()).unwrap();
    assert_eq!(
        store.state().unwrap().active,
        Some(1),
        "the rollback was finished"
    );
    let st = reopened.status().unwrap();
    assert_eq!(st.decision.unwrap().decision, DecisionKind::RolledBack);
    // And only once: a second open writes nothing more.
    let n = store.history().unwrap().len();
    Guard::open(store.clone(), id, small_segments()).unwrap();
    assert_eq!(store.history().unwrap().len(), n);
}

#[test]
fn a_guard_is_refused_without_an_active_version_or_while_another_runs() {
    let (_t, store) = store_with_two();
    assert!(Guard::start(
        store.clone(),
        StartOptions::new(Ref::Number(1)),
        small_segments()
    )
    .is_err());
    let mut o = StartOptions::new(Ref::Number(2));
    o.mode = Mode::Shadow;
    let _g = Guard::start(store.clone(), o.clone(), small_segments()).unwrap();
    let err = Guard::start(store.clone(), o, small_segments()).unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
    let t2 = TempDir::new("guard-empty");
    let empty = Arc::new(Store::open(&t2.0).unwrap());
    let err = Guard::start(empty, StartOptions::new(Ref::Number(1)), small_segments()).unwrap_err();
    assert!(err.to_string().contains("no version is active"), "{err}");
}

#[test]
fn an_old_reader_sees_guard_events_as_unknown_kinds_with_the_state_unchanged() {
    let (_t, store) = store_with_two();
    let mut o = StartOptions::new(Ref::Number(2));
    o.mode = Mode::Shadow;
    let _g = Guard::start(store.clone(), o, small_segments()).unwrap();
    let h = store.history().unwrap();
    let last = h.last().unwrap();
    assert_eq!(last.kind, EventKind::GuardStarted);
    assert_eq!(
        last.state,
        h[h.len() - 2].state,
        "the state is carried unchanged"
    );
    // What a woodlot without guard kinds does with the file: `#[serde(other)]` -> Unknown.
    let mut v: serde_json::Value = serde_json::to_value(last).unwrap();
    v["kind"] = "some_future_kind".into();
    let old = crate::store::Event::parse(&serde_json::to_vec(&v).unwrap(), last.seq).unwrap();
    assert_eq!(old.kind, EventKind::Unknown);
    assert_eq!(old.state, last.state);
}

/// A store whose v1 (active) carries a training histogram of 2,000 rows like [`rows`], and
/// whose v2 has none (as a converted forest or a 2.0 file).
fn store_with_histogram() -> (TempDir, Arc<Store>) {
    let t = TempDir::new("guard-drift");
    let s = Store::open(&t.0).unwrap();
    let mut v1 = forest_with_threshold(0.5);
    let (x, _) = rows(2000, 11);
    v1.training_histogram = Some(super::psi::Reference::fit(x.view(), 10).unwrap());
    v1.fit_info.n_samples = 2000;
    s.save(&model_bytes(&v1), SaveOptions::default()).unwrap();
    s.promote(&Ref::Number(1), None, None).unwrap();
    s.save(
        &model_bytes(&forest_with_threshold(0.8)),
        SaveOptions::default(),
    )
    .unwrap();
    (t, Arc::new(s))
}

#[test]
fn the_guard_counts_scored_rows_into_the_baselines_histogram_and_flags_a_shift() {
    let (_t, store) = store_with_histogram();
    let mut o = StartOptions::new(Ref::Number(2));
    o.mode = Mode::Shadow;
    let g = Guard::start(store.clone(), o, small_segments()).unwrap();
    let d = g.status().unwrap().drift.unwrap();
    assert_eq!((d.rows, d.flagged.len()), (0, 0));
    let (mut x, _) = rows(1500, 12);
    x.column_mut(1).mapv_inplace(|v| v * 0.5);
    for batch in x.axis_chunks_iter(ndarray::Axis(0), 100) {
        g.score(batch, None).unwrap();
    }
    let d = g.status().unwrap().drift.unwrap();
    assert_eq!(d.rows, 1500);
    assert_eq!(d.flagged, vec![1], "{:?}", d.psi);
    assert!(d.psi[0] < 0.05 && d.psi[1] > 0.5, "{:?}", d.psi);
    assert_eq!(d.threshold, super::psi::DEFAULT_THRESHOLD);
    // A warning only: nothing was decided.
    assert!(g.check().unwrap().decision.is_none());
    g.stop(None).unwrap();
}

#[test]
fn drift_against_a_stored_version_uses_its_histogram_or_says_to_pass_rows() {
    let (_t, store) = store_with_histogram();
    let (x, _) = rows(800, 13);
    let d = super::drift::version_drift(&store, &Ref::Active, x.view(), 0.2).unwrap();
    assert!(
        d.flagged.is_empty() && d.psi.iter().all(|p| *p < 0.05),
        "{:?}",
        d.psi
    );
    let err = super::drift::version_drift(&store, &Ref::Number(2), x.view(), 0.2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("v2 has no training histogram") && err.contains("reference="),
        "{err}"
    );
    // A guard whose baseline has none reports no drift rather than failing.
    store.promote(&Ref::Number(2), None, None).unwrap();
    let mut o = StartOptions::new(Ref::Number(1));
    o.mode = Mode::Shadow;
    let g = Guard::start(store.clone(), o, small_segments()).unwrap();
    g.score(x.view(), None).unwrap();
    assert!(g.status().unwrap().drift.is_none());
    g.stop(None).unwrap();
}
