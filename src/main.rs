use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        Command::Import {
            file,
            format,
            create_apps,
        } => import(&config, &file, format.as_deref(), create_apps),
        Command::Export {
            app,
            format,
            output,
        } => export(&config, &app, &format, output.as_deref()),
        Command::Dump { output } => dump(&config, output.as_deref()),
        Command::Restore { file } => restore(&config, &file),
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
    use device_registry::server::LostWrites;
    let lost_writes = if repair {
        LostWrites::Accept
    } else {
        LostWrites::Refuse
    };
    let store = match device_registry::server::open_store(config, lost_writes) {
        Ok(store) => store,
        Err(error) => return open_failed(&error),
    };
    let report = match store.check(repair) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("device-registry: check failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let place = match config.storage.engine {
        device_registry::config::Engine::Sled => config.storage.data_dir.display().to_string(),
        device_registry::config::Engine::Postgres => "the PostgreSQL database".to_owned(),
    };
    println!(
        "{} devices, {} time-index entries in {place}",
        report.devices, report.index_entries,
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
        (
            report.wrong_counters,
            "device counters that differ from a recount",
        ),
    ] {
        if count > 0 {
            println!("{count} {what}");
        }
    }
    for example in &report.examples {
        println!("  {example}");
    }
    let imports = report.interrupted_imports.len();
    if imports > 0 {
        println!("{imports} interrupted imports: import the same file again to finish");
    }
    // Named whole, never crowded out of the capped examples: only the operator can finish them.
    for source in &report.interrupted_imports {
        println!("  the import of {source} was interrupted: import it again to finish it");
    }
    if report.repaired {
        if report.needs_repair() {
            println!("repaired: the indexes were rebuilt from the records");
        }
        if imports > 0 {
            println!("forgot the {imports} interrupted imports (import them again if they matter)");
        }
        match store.check(false) {
            Ok(after) if after.is_clean() => {
                println!("clean now");
                return ExitCode::SUCCESS;
            }
            _ => println!("repair did not make the store clean"),
        }
    } else if report.needs_repair() {
        println!("run again with --repair to rebuild the indexes");
    } else {
        println!("or run again with --repair to forget them");
    }
    ExitCode::FAILURE
}

fn export(
    config: &Config,
    app_id: &str,
    format: &str,
    output: Option<&std::path::Path>,
) -> ExitCode {
    use std::io::Write;

    use device_registry::export::{self, Format};

    let Some(format) = Format::parse(format) else {
        eprintln!("device-registry: --format must be ndjson or csv");
        return ExitCode::from(2);
    };
    let store = match device_registry::server::open_store(
        config,
        device_registry::server::LostWrites::Refuse,
    ) {
        Ok(store) => store,
        Err(error) => return open_failed(&error),
    };
    let total = match store.device_counts() {
        Ok(counts) => match counts.into_iter().find(|(app, _)| app == app_id) {
            Some((_, total)) => total,
            None => {
                eprintln!(
                    "device-registry: no app {app_id} in {}",
                    config.storage.data_dir.display()
                );
                return ExitCode::FAILURE;
            }
        },
        Err(error) => {
            eprintln!("device-registry: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut out: Box<dyn Write> = match output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(error) => {
                eprintln!("device-registry: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // A progress bar on a terminal only (indicatif draws nothing when stderr is not one).
    let progress = indicatif::ProgressBar::new(total as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} devices {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut text = format.header();
    let every_device = Default::default();
    for page in export::pages(store.as_ref(), app_id, &every_device) {
        let devices = match page {
            Ok(devices) => devices,
            Err(error) => {
                eprintln!("device-registry: export failed: {error}");
                return ExitCode::FAILURE;
            }
        };
        export::render(format, &devices, &mut text);
        progress.inc(devices.len() as u64);
        if let Err(error) = out.write_all(text.as_bytes()) {
            eprintln!("device-registry: write failed: {error}");
            return ExitCode::FAILURE;
        }
        text.clear();
    }
    progress.finish_and_clear();
    if let Err(error) = out.flush() {
        eprintln!("device-registry: write failed: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn import(
    config: &Config,
    file: &std::path::Path,
    format: Option<&str>,
    create_apps: bool,
) -> ExitCode {
    use device_registry::export::Format;

    let format = match format {
        Some(name) => match Format::parse(name) {
            Some(format) => format,
            None => {
                eprintln!("device-registry: --format must be ndjson or csv");
                return ExitCode::from(2);
            }
        },
        None if file
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv")) =>
        {
            Format::Csv
        }
        None => Format::Ndjson,
    };
    let opened = std::fs::File::open(file).and_then(|f| f.metadata().map(|m| (f, m.len())));
    let (reader, size) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            eprintln!("device-registry: cannot read {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let store = match device_registry::server::open_store(
        config,
        device_registry::server::LostWrites::Refuse,
    ) {
        Ok(store) => store,
        Err(error) => return open_failed(&error),
    };
    // A progress bar over the file's bytes, on a terminal only.
    let progress = indicatif::ProgressBar::new(size);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let now = device_registry::timefmt::system_now();
    let reader = std::io::BufReader::new(reader);
    // The name `check` gives an interrupted import: the file as the operator can find it again.
    let source = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let imported = device_registry::import::import(
        store.as_ref(),
        &source.display().to_string(),
        reader,
        format,
        create_apps,
        now,
        |bytes| progress.inc(bytes as u64),
    );
    progress.finish_and_clear();
    let report = match imported {
        Ok(report) => report,
        Err(error) => {
            eprintln!("device-registry: import failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    for (line, why) in &report.bad_lines {
        eprintln!("line {line}: {why} (skipped)");
    }
    if report.skipped > report.bad_lines.len() {
        eprintln!(
            "... and {} more bad lines",
            report.skipped - report.bad_lines.len()
        );
    }
    println!(
        "imported {} devices, skipped {} lines",
        report.imported, report.skipped
    );
    if report.skipped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Says why the store did not open, in one line, and fails.
fn dump(config: &Config, output: Option<&std::path::Path>) -> ExitCode {
    use device_registry::store::backup::DumpWriter;
    use std::io::Write;

    let store = match device_registry::server::open_store(
        config,
        device_registry::server::LostWrites::Refuse,
    ) {
        Ok(store) => store,
        Err(error) => return open_failed(&error),
    };
    let mut out: Box<dyn Write> = match output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(error) => {
                eprintln!("device-registry: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = DumpWriter::new(&mut out).and_then(|mut writer| {
        store.dump(&mut |record| writer.record(record))?;
        writer.finish()
    });
    match written {
        Ok(records) => {
            eprintln!("device-registry: dumped {records} records");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("device-registry: the dump failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn restore(config: &Config, file: &std::path::Path) -> ExitCode {
    use device_registry::store::backup::DumpReader;

    let reader = match std::fs::File::open(file) {
        Ok(file) => std::io::BufReader::new(file),
        Err(error) => {
            eprintln!("device-registry: cannot read {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let store = match device_registry::server::open_store(
        config,
        device_registry::server::LostWrites::Refuse,
    ) {
        Ok(store) => store,
        Err(error) => return open_failed(&error),
    };
    let restored = DumpReader::new(reader).and_then(|mut records| store.restore(&mut records));
    match restored.and_then(|records| store.flush().map(|()| records)) {
        Ok(records) => {
            eprintln!("device-registry: restored {records} records");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("device-registry: the restore failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn open_failed(error: &device_registry::server::ServeError) -> ExitCode {
    use device_registry::server::ServeError;
    use device_registry::store::StoreError;
    match error {
        // The lock another process holds.
        ServeError::Open {
            source: StoreError::Unavailable(_),
            ..
        } => eprintln!("device-registry: {error} (is a server using this data directory?)"),
        _ => eprintln!("device-registry: {error}"),
    }
    ExitCode::FAILURE
}
