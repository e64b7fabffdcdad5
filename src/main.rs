use std::process::ExitCode;

use clap::{Parser, Subcommand};

use device_registry::cli;
use device_registry::config::{Config, Overrides};

// Pages and check-ins allocate many small, short-lived buffers (decoded records, JSON output),
// on several threads. With glibc's malloc, allocation was ~15% of a page's CPU (perf); jemalloc
// served 31% more pages and 23% more single reads per second, with a lower RSS
// (bench/RESULTS.md). mimalloc was as fast but kept ~80 MiB more resident.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Write every device of an app as NDJSON (or CSV), offline, to standard output or a file.
    Export {
        /// The app whose devices to export.
        #[arg(long)]
        app: String,
        /// ndjson (default) or csv.
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Load devices from what `export` writes (NDJSON, or CSV with its header), offline.
    /// Bad lines are reported with their number and skipped; exit status 1 if any was.
    Import {
        /// The file to read.
        file: std::path::PathBuf,
        /// ndjson or csv (default: csv for a .csv file, else ndjson).
        #[arg(long)]
        format: Option<String>,
        /// Create the apps the file names that do not exist yet.
        #[arg(long)]
        create_apps: bool,
    },
    /// Write every record of the store (apps, channels, bundles, key hashes, devices,
    /// overrides, audit, bundle counters) as one consistent NDJSON dump. PostgreSQL: while
    /// nodes run; sled: with the server stopped (a running server dumps at `GET /dump`).
    Dump {
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Load a dump into an empty store of the configured engine (either engine's dump).
    Restore {
        /// The dump to read.
        file: std::path::PathBuf,
    },
    /// Write a compacted copy of the sled store (with the server stopped) into a new
    /// directory, to put in the data directory's place: sled's files never shrink by
    /// themselves.
    Compact {
        /// The directory to write, absent or empty.
        into: std::path::PathBuf,
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
        Command::Check { repair } => cli::check(&config, repair),
        Command::Import {
            file,
            format,
            create_apps,
        } => cli::import(&config, &file, format.as_deref(), create_apps),
        Command::Export {
            app,
            format,
            output,
        } => cli::export(&config, &app, &format, output.as_deref()),
        Command::Dump { output } => cli::dump(&config, output.as_deref()),
        Command::Restore { file } => cli::restore(&config, &file),
        Command::Compact { into } => cli::compact(&config, &into),
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
