//! vigil: the one binary. Reads settings, wires the store into the services and the HTTP
//! edge, and runs the operator commands. `anyhow` lives here and nowhere else.
//!
//! Exit status: 0 success, 1 a negative answer (e.g. a broken audit chain), 2 an error.

mod cli;
mod config;
mod hunt;
mod serve;
mod setup;

use std::process::ExitCode;

use clap::Parser;

// glibc's allocator serializes on arena locks under many small allocations from many
// threads, which is what serving JSON lists is; mimalloc does not (measured in bench/api.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Offline and store-free: no settings, logging or runtime to set up.
    if let cli::Command::Hunt(args) = &cli.command {
        return hunt::run(args);
    }
    let settings = match cli.settings.resolve() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("vigil: invalid configuration: {err:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = setup::init_logging(&settings.log) {
        eprintln!("vigil: invalid configuration: {err:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("vigil: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(cli.command, settings)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vigil: {err:#}");
            ExitCode::from(2)
        }
    }
}
