//! Invariants of every evasion attack on a small MLP trained on the bundled
//! MNIST sample: adversarials stay inside the ε-ball and the input box,
//! a success is a changed label, and query-based attacks count queries.

use mlsec_attack::evasion::{self, AttackKind, Norm, Params, Run, Target};
use mlsec_model::train::{train, Standard, TrainOptions};
use mlsec_model::zoo::Architecture;
use mlsec_model::{Classifier, Dataset, NativeModel};
use std::sync::OnceLock;

fn fixture() -> &'static (NativeModel, Dataset) {
    static MODEL: OnceLock<(NativeModel, Dataset)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let (train_set, test) = mlsec_model::data::bundled_mnist().unwrap();
        let options = TrainOptions {
            epochs: 3,
            batch_size: 64,
            learning_rate: 2e-3,
            seed: 3,
        };
        let (model, report) = train(
            &Architecture::Mlp { hidden: vec![64] },
            &train_set.head(4000),
            None,
            &options,
            &mut Standard,
            &mut |_| {},
        )
        .unwrap();
        assert!(report.epochs.last().unwrap().train_accuracy > 0.85);
        (model, test.head(60))
    })
}

fn run(kind: AttackKind, norm: Norm, eps: f32, tweak: impl FnOnce(&mut Params)) -> Run {
    let (model, data) = fixture();
    let mut p = Params::new(kind, norm, eps);
    p.seed = 5;
    tweak(&mut p);
    let target = if kind.access() == mlsec_model::Access::Query {
        Target::QueryOnly(model)
    } else {
        Target::WhiteBox(model)
    };
    evasion::evaluate(target, data, &p, &|_| {}).unwrap()
}

/// Every adversarial is inside the box; bounded attacks also inside the
/// ball; a sample counted as fooled is misclassified by the model.
fn check_invariants(r: &Run, norm: Norm, eps: f32, bounded: bool) {
    let (model, data) = fixture();
    let adv = &r.outcome.adversarial;
    let again = model.predict(adv).unwrap();
    for (j, &i) in r.attacked.iter().enumerate() {
        let a = adv.sample(j);
        let o = data.inputs.sample(i);
        assert!(
            a.iter().all(|v| (0.0..=1.0).contains(v)),
            "{:?}: outside [0, 1]",
            r.evaluation.attack
        );
        if bounded {
            let d = norm.distance(a, o);
            assert!(
                d <= eps * (1.0 + 1e-5) + 1e-5,
                "{:?}: {} > {eps}",
                r.evaluation.attack,
                d
            );
        }
        if r.fooled[j] {
            assert_ne!(
                again[j], data.labels[i],
                "{:?}: counted as fooled but still right",
                r.evaluation.attack
            );
            assert!(norm.distance(a, o) <= eps * (1.0 + 1e-5) + 1e-5);
        }
    }
    let e = &r.evaluation;
    assert_eq!(e.successes, r.fooled.iter().filter(|&&f| f).count());
    let expected_robust = (e.attacked - e.successes) as f64 / e.samples as f64;
    assert!((e.robust_accuracy - expected_robust).abs() < 1e-12);
    assert!(e.robust_accuracy <= e.clean_accuracy);
}

#[test]
fn bounded_white_box_attacks_stay_in_the_ball_and_succeed() {
    for kind in [
        AttackKind::Fgsm,
        AttackKind::Pgd,
        AttackKind::ApgdCe,
        AttackKind::ApgdDlr,
    ] {
        for (norm, eps) in [(Norm::Linf, 0.15), (Norm::L2, 2.0)] {
            let r = run(kind, norm, eps, |p| p.steps = p.steps.min(20));
            check_invariants(&r, norm, eps, true);
            let floor = if kind == AttackKind::Fgsm { 0.3 } else { 0.7 };
            assert!(
                r.evaluation.success_rate >= floor,
                "{kind:?} {norm:?}: success {}",
                r.evaluation.success_rate
            );
        }
    }
}

#[test]
fn zero_budget_changes_nothing() {
    let r = run(AttackKind::Pgd, Norm::Linf, 0.0, |_| {});
    check_invariants(&r, Norm::Linf, 0.0, true);
    assert_eq!(r.evaluation.successes, 0);
    assert_eq!(r.evaluation.robust_accuracy, r.evaluation.clean_accuracy);
}

#[test]
fn more_steps_never_weaken_pgd_with_the_same_start() {
    let few = run(AttackKind::Pgd, Norm::Linf, 0.08, |p| {
        p.steps = 2;
        p.step_size = Some(0.04);
    });
    let many = run(AttackKind::Pgd, Norm::Linf, 0.08, |p| {
        p.steps = 20;
        p.step_size = Some(0.04);
    });
    // Early stopping keeps the first success, so later steps only add.
    assert!(many.evaluation.successes >= few.evaluation.successes);
}

#[test]
fn minimal_perturbation_attacks_find_small_changes() {
    let cw = run(AttackKind::Cw, Norm::L2, 10.0, |p| {
        p.steps = 50;
        p.binary_search_steps = 3;
    });
    check_invariants(&cw, Norm::L2, 10.0, false);
    assert!(
        cw.evaluation.success_rate >= 0.9,
        "C&W success {}",
        cw.evaluation.success_rate
    );
    let df = run(AttackKind::Deepfool, Norm::L2, 10.0, |_| {});
    check_invariants(&df, Norm::L2, 10.0, false);
    assert!(
        df.evaluation.success_rate >= 0.9,
        "DeepFool success {}",
        df.evaluation.success_rate
    );
    // Minimal attacks beat a fixed-budget attack's typical L2 size.
    let pgd = run(AttackKind::Pgd, Norm::L2, 3.0, |_| {});
    let median = |r: &Run| r.evaluation.perturbation_l2.map(|s| s.median).unwrap();
    assert!(
        median(&cw) < median(&pgd),
        "C&W {} vs PGD {}",
        median(&cw),
        median(&pgd)
    );
}

#[test]
fn query_attacks_succeed_and_count_queries() {
    let sq = run(AttackKind::Square, Norm::Linf, 0.2, |p| p.steps = 500);
    check_invariants(&sq, Norm::Linf, 0.2, true);
    assert!(
        sq.evaluation.success_rate >= 0.8,
        "Square success {}",
        sq.evaluation.success_rate
    );
    let q = sq.evaluation.queries_per_success.unwrap();
    assert!(q.median >= 1.0 && q.median <= 500.0);

    let sq2 = run(AttackKind::Square, Norm::L2, 3.0, |p| p.steps = 300);
    check_invariants(&sq2, Norm::L2, 3.0, true);
    assert!(sq2.evaluation.successes > 0);

    let budget = 3000;
    let hsj = run(AttackKind::Hsj, Norm::L2, 6.0, |p| {
        p.steps = 8;
        p.max_queries = Some(budget);
    });
    check_invariants(&hsj, Norm::L2, 6.0, false);
    assert!(
        hsj.evaluation.success_rate >= 0.8,
        "HSJ success {}",
        hsj.evaluation.success_rate
    );
    // The budget is checked between probe batches, so it may be passed by at most one batch.
    assert!(
        hsj.outcome
            .queries
            .iter()
            .all(|&q| q > 0 && q <= budget + 400),
        "{:?}",
        hsj.outcome.queries
    );
}

#[test]
fn white_box_attacks_refuse_query_only_access() {
    let (model, data) = fixture();
    let p = Params::new(AttackKind::Pgd, Norm::Linf, 0.1);
    let err = evasion::evaluate(Target::QueryOnly(model), data, &p, &|_| {})
        .err()
        .unwrap();
    assert!(err.message.contains("needs gradients"), "{}", err.message);
}

#[test]
fn attack_names_parse() {
    for k in AttackKind::ALL {
        assert_eq!(AttackKind::parse(k.name()), Some(k));
    }
    assert_eq!(AttackKind::parse("HopSkipJump"), Some(AttackKind::Hsj));
    assert_eq!(AttackKind::parse("carlini-wagner"), Some(AttackKind::Cw));
    assert_eq!(AttackKind::parse("nope"), None);
    assert!(!AttackKind::Cw.supports(Norm::Linf));
}

#[test]
fn square_schedule_halves_the_window() {
    assert_eq!(evasion::window_fraction(0.8, 0, 10_000), 0.8);
    assert_eq!(evasion::window_fraction(0.8, 11, 10_000), 0.4);
    assert_eq!(evasion::window_fraction(0.8, 9_000, 10_000), 0.8 / 512.0);
    // Rescaled to a shorter run.
    assert_eq!(evasion::window_fraction(0.8, 2, 1_000), 0.4);
}
