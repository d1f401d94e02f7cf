//! reuse-audit binary: parse, dispatch, map errors to exit codes. The library does the work;
//! `cli` declares the flags, `config` validates them, `commands` turns them into library
//! calls, prints and applies CI gates.

mod cli;
mod commands;
mod config;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(err) = commands::dispatch(cli.command) {
        // A closed stdout (e.g. `| head`) is not an error.
        if err
            .chain()
            .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
        {
            std::process::exit(0);
        }
        eprintln!("error: {}", reuse_audit::report::table::terminal_safe(&format!("{err:#}")));
        std::process::exit(reuse_audit::error::exit_code(&err));
    }
}
