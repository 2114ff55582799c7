//! The `mlsec` binary: argument parsing and wiring only.

mod cli;
mod commands;
mod output;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

fn main() -> ExitCode {
    mlsec_core::memory::keep_freed_memory();
    let cli = cli::Cli::parse();
    let result = match &cli.command {
        cli::Command::Rules(args) => commands::rules::run(&cli.global, args),
        cli::Command::Scan(args) => commands::scan::run(&cli.global, args),
        cli::Command::Convert(args) => commands::convert::run(&cli.global, args),
        cli::Command::Keygen(args) => commands::sign::keygen(&cli.global, args),
        cli::Command::Sign(args) => commands::sign::sign(&cli.global, args),
        cli::Command::Verify(args) => commands::sign::verify(&cli.global, args),
        cli::Command::Attest(args) => commands::sign::attest(&cli.global, args),
        cli::Command::Provenance(cmd) => commands::provenance::run(&cli.global, cmd),
        cli::Command::Env(cli::EnvCommand::Verify(args)) => {
            commands::env::verify(&cli.global, args)
        }
        cli::Command::Model(cli::ModelCommand::Inspect(args)) => {
            commands::model::inspect(&cli.global, args)
        }
        cli::Command::Model(cli::ModelCommand::Predict(args)) => {
            commands::model::predict(&cli.global, args)
        }
        cli::Command::Train(args) => commands::train::train(&cli.global, args),
        cli::Command::Attack(cli::AttackCommand::Evasion(args)) => {
            commands::evasion::run(&cli.global, args)
        }
        cli::Command::Attack(cli::AttackCommand::Poison(args)) => {
            commands::gate::poison(&cli.global, args)
        }
        cli::Command::Audit(cli::AuditCommand::Leakage(args)) => {
            commands::gate::leakage(&cli.global, args)
        }
        cli::Command::Holdout(cmd) => commands::gate::holdout(&cli.global, cmd),
        cli::Command::Data(cmd) => commands::data::run(&cli.global, cmd),
        cli::Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut cli::Cli::command(),
                "mlsec",
                &mut std::io::stdout(),
            );
            Ok(output::exit::OK)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the error and its causes, as `a: b: c`.
            eprintln!("error: {e:#}");
            ExitCode::from(output::exit::ERROR)
        }
    }
}
