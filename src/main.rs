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
