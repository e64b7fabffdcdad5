//! The command line's offline work: `check`, `export`, `import`, `dump`, `restore`, `compact`.
//! Each opens the configured store, does its work through the store's contract, says what it
//! did on standard error and answers the process's exit status (`main.rs` parses the arguments).

use std::process::ExitCode;

use crate::config::Config;

pub fn check(config: &Config, repair: bool) -> ExitCode {
    use crate::server::LostWrites;
    let lost_writes = if repair {
        LostWrites::Accept
    } else {
        LostWrites::Refuse
    };
    let store = match crate::server::open_store(config, lost_writes) {
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
        crate::config::Engine::Sled => config.storage.data_dir.display().to_string(),
        crate::config::Engine::Postgres => "the PostgreSQL database".to_owned(),
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

pub fn export(
    config: &Config,
    app_id: &str,
    format: &str,
    output: Option<&std::path::Path>,
) -> ExitCode {
    use std::io::Write;

    use crate::export::{self, Format};

    let Some(format) = Format::parse(format) else {
        eprintln!("device-registry: --format must be ndjson or csv");
        return ExitCode::from(2);
    };
    let store = match open_store(config) {
        Ok(store) => store,
        Err(status) => return status,
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
    let mut out = match open_output(output) {
        Ok(out) => out,
        Err(status) => return status,
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

pub fn import(
    config: &Config,
    file: &std::path::Path,
    format: Option<&str>,
    create_apps: bool,
) -> ExitCode {
    use crate::export::Format;

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
    let store = match open_store(config) {
        Ok(store) => store,
        Err(status) => return status,
    };
    // A progress bar over the file's bytes, on a terminal only.
    let progress = indicatif::ProgressBar::new(size);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let now = crate::timefmt::system_now();
    let reader = std::io::BufReader::new(reader);
    // The name `check` gives an interrupted import: the file as the operator can find it again.
    let source = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let imported = crate::import::import(
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

/// `device-registry dump`: the whole store, as NDJSON, to a file or standard output.
pub fn dump(config: &Config, output: Option<&std::path::Path>) -> ExitCode {
    use crate::store::backup::DumpWriter;

    let store = match open_store(config) {
        Ok(store) => store,
        Err(status) => return status,
    };
    let mut out = match open_output(output) {
        Ok(out) => out,
        Err(status) => return status,
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

pub fn restore(config: &Config, file: &std::path::Path) -> ExitCode {
    use crate::store::backup::DumpReader;

    let reader = match std::fs::File::open(file) {
        Ok(file) => std::io::BufReader::new(file),
        Err(error) => {
            eprintln!("device-registry: cannot read {}: {error}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let store = match open_store(config) {
        Ok(store) => store,
        Err(status) => return status,
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

/// Writes a compacted copy of the sled store into `into`: sled's file keeps the high-water mark
/// of its log, and a copy in key order gives the rest back. The store keeps all it held; the
/// operator swaps the directories (README, "Disk space").
pub fn compact(config: &Config, into: &std::path::Path) -> ExitCode {
    if config.storage.engine != crate::config::Engine::Sled {
        eprintln!(
            "device-registry: compact is for the sled engine; PostgreSQL gives space back \
             itself (autovacuum, VACUUM FULL)"
        );
        return ExitCode::from(2);
    }
    // Opening would create an empty store where there is none: a mistyped `--data-dir` must
    // not come out as an empty copy.
    let data_dir = &config.storage.data_dir;
    if !std::fs::read_dir(data_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        eprintln!(
            "device-registry: {} holds no store: nothing to compact",
            data_dir.display()
        );
        return ExitCode::FAILURE;
    }
    // Inside the data directory, the copy would move aside with it.
    let parent = into.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(std::path::Path::new("."));
    if let (Ok(parent), Ok(data_dir)) = (parent.canonicalize(), data_dir.canonicalize()) {
        if parent.starts_with(&data_dir) {
            eprintln!(
                "device-registry: {} is inside the data directory {}: write the copy beside it",
                into.display(),
                data_dir.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let store = match crate::server::open_sled(config, crate::server::LostWrites::Refuse) {
        Ok(store) => store,
        Err(error) => return open_failed(&error),
    };
    match store.compact_into(into) {
        Ok(done) => {
            eprintln!(
                "device-registry: {} keys copied into {}: {} MiB on disk, from {} MiB. Move {} \
                 aside, put {} in its place, then start the server",
                done.keys,
                into.display(),
                done.after >> 20,
                done.before >> 20,
                config.storage.data_dir.display(),
                into.display(),
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("device-registry: the compaction failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The configured store, for a command that does not repair it; or the exit status after
/// saying why it did not open.
/// The file a command writes to, or standard output; a file that cannot be created is said.
fn open_output(output: Option<&std::path::Path>) -> Result<Box<dyn std::io::Write>, ExitCode> {
    Ok(match output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(error) => {
                eprintln!("device-registry: cannot write {}: {error}", path.display());
                return Err(ExitCode::FAILURE);
            }
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

fn open_store(config: &Config) -> Result<std::sync::Arc<dyn crate::store::Store>, ExitCode> {
    crate::server::open_store(config, crate::server::LostWrites::Refuse)
        .map_err(|error| open_failed(&error))
}

/// Says why the store did not open, in one line, and fails.
fn open_failed(error: &crate::server::ServeError) -> ExitCode {
    use crate::server::ServeError;
    use crate::store::StoreError;
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
