use std::process::ExitCode;

use clap::{Parser, Subcommand};

use device_registry::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "device-registry",
    version,
    about = "Registry of Capacitor live-update devices, serving a Capgo-compatible Devices API"
)]
struct Cli {
    /// Configuration file (default: config.toml, if present). Env: DEVICE_REGISTRY_CONFIG.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<std::path::PathBuf>,
    /// Listen address, host:port. Env: DEVICE_REGISTRY_BIND.
    #[arg(long, global = true, value_name = "ADDR")]
    bind: Option<String>,
    /// Data directory. Env: DEVICE_REGISTRY_DATA_DIR.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Verify the store offline: every index entry matches its record and the reverse, every
    /// record belongs to an app. Exit status 0 when clean, 1 when not.
    Check {
        /// Rebuild the indexes from the primary records and drop what belongs to no app.
        #[arg(long)]
        repair: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let flags = Overrides {
        config: cli.config,
        bind: cli.bind,
        data_dir: cli.data_dir,
    };
    let config = match Config::load(&flags, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("device-registry: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check { repair } => check(&config, repair),
        Command::Serve => {
            let result =
                actix_web::rt::System::new().block_on(device_registry::server::serve(config));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("device-registry: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(config: &Config, repair: bool) -> ExitCode {
    use device_registry::store::Store;

    let store = match device_registry::server::open_store(config) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("device-registry: {error} (is a server using this data directory?)");
            return ExitCode::FAILURE;
        }
    };
    let report = match store.check(repair) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("device-registry: check failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{} devices, {} time-index entries in {}",
        report.devices,
        report.index_entries,
        config.storage.data_dir.display()
    );
    if report.is_clean() {
        println!("clean");
        return ExitCode::SUCCESS;
    }
    for (count, what) in [
        (
            report.missing_index_entries,
            "devices without a time-index entry",
        ),
        (
            report.stale_index_entries,
            "time-index entries matching no device",
        ),
        (
            report.unexpirable_overrides,
            "overrides that would never expire",
        ),
        (report.orphan_records, "records of apps that do not exist"),
        (
            report.dangling_overrides,
            "overrides naming a missing channel or bundle",
        ),
        (report.corrupt_records, "records that do not decode"),
    ] {
        if count > 0 {
            println!("{count} {what}");
        }
    }
    for example in &report.examples {
        println!("  {example}");
    }
    if report.repaired {
        match store.check(false) {
            Ok(after) if after.is_clean() => {
                println!("repaired: the indexes were rebuilt from the records; clean now");
                return ExitCode::SUCCESS;
            }
            _ => println!("repair did not make the store clean"),
        }
    } else {
        println!("run again with --repair to rebuild the indexes");
    }
    ExitCode::FAILURE
}
