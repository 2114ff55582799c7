//! Adversarial training measurably buys robustness: an MLP trained with
//! PGD-AT or TRADES keeps more accuracy under PGD than the same MLP trained
//! on clean data, with the same seed, data and epochs.

use mlsec_attack::evasion::{evaluate, AttackKind, Norm, Params, Target};
use mlsec_defend::{AdversarialConfig, PgdAt, Trades};
use mlsec_model::train::{train, Objective, Standard, TrainOptions};
use mlsec_model::zoo::Architecture;

const EPS: f32 = 0.1;

fn robust_accuracy(objective: &mut dyn Objective) -> (f64, f64) {
    let (train_set, test) = mlsec_model::data::bundled_mnist().unwrap();
    let options = TrainOptions {
        epochs: 3,
        batch_size: 64,
        learning_rate: 2e-3,
        seed: 9,
    };
    let (model, _) = train(
        &Architecture::Mlp { hidden: vec![128] },
        &train_set.head(3000),
        None,
        &options,
        objective,
        &mut |_| {},
    )
    .unwrap();
    let mut p = Params::new(AttackKind::Pgd, Norm::Linf, EPS);
    p.steps = 10;
    let run = evaluate(Target::WhiteBox(&model), &test.head(300), &p, &|_| {}).unwrap();
    (
        run.evaluation.clean_accuracy,
        run.evaluation.robust_accuracy,
    )
}

fn attack() -> AdversarialConfig {
    AdversarialConfig {
        eps: EPS,
        steps: 5,
        step_size: None,
        warmup: 0.2,
    }
}

#[test]
fn pgd_at_and_trades_beat_standard_training_under_pgd() {
    let (clean_std, robust_std) = robust_accuracy(&mut Standard);
    let (clean_pgd, robust_pgd) = robust_accuracy(&mut PgdAt(attack()));
    let (clean_trades, robust_trades) = robust_accuracy(&mut Trades {
        attack: attack(),
        beta: 6.0,
    });
    eprintln!("standard {clean_std:.3}/{robust_std:.3}, pgd-at {clean_pgd:.3}/{robust_pgd:.3}, trades {clean_trades:.3}/{robust_trades:.3}");
    assert!(clean_std > 0.85 && clean_pgd > 0.75 && clean_trades > 0.75);
    assert!(
        robust_pgd > robust_std + 0.15,
        "PGD-AT {robust_pgd} vs standard {robust_std}"
    );
    assert!(
        robust_trades > robust_std + 0.15,
        "TRADES {robust_trades} vs standard {robust_std}"
    );
}

#[test]
fn the_objective_is_recorded_in_the_model_config() {
    let (train_set, _) = mlsec_model::data::bundled_mnist().unwrap();
    let options = TrainOptions {
        epochs: 1,
        batch_size: 64,
        learning_rate: 1e-3,
        seed: 1,
    };
    let mut objective = Trades {
        attack: attack(),
        beta: 3.0,
    };
    let (model, report) = train(
        &Architecture::Mlp { hidden: vec![16] },
        &train_set.head(256),
        None,
        &options,
        &mut objective,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.objective, "trades");
    let training = model.config().training.clone().unwrap();
    assert_eq!(training["objective"], "trades");
    assert_eq!(training["objective_parameters"]["beta"], 3.0);
    assert_eq!(training["objective_parameters"]["attack"]["steps"], 5);
}
