//! `monitor`: answers the usual questions about the SQLite file that
//! `monitor_runtime` writes. The data flows one way: `db` opens the file and
//! reads the partitions a time window needs, a command in `commands/` turns
//! rows into figures, `render` prints them as a table or as JSON.

mod commands;
mod db;
mod query;
mod render;
mod serve;
mod window;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Reads a monitor database: summaries, errors, call trees, resources, export.
#[derive(Parser, Debug)]
#[command(name = "monitor", version, about)]
pub struct Cli {
    /// The database file [default: `db_path` from the config, else monitor.db].
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// The config file whose `db_path` to read [default: monitor.toml, or $MONITOR_CONFIG].
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print JSON instead of tables (JSON lines for `tail`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Per function: calls, errors, percentiles of duration, busy vs wall, items.
    Summary {
        /// Only spans that started this long ago or later (30s, 15m, 1h, 2d, 1h30m).
        #[arg(long, value_name = "WINDOW")]
        since: Option<String>,
        /// Only functions of this group.
        #[arg(long)]
        group: Option<String>,
        /// Order of the rows (largest first).
        #[arg(long, value_enum, default_value_t = SortBy::Calls)]
        sort: SortBy,
    },
    /// The latest errors and panics, with their messages.
    Errors {
        /// Only spans that started this long ago or later.
        #[arg(long, value_name = "WINDOW")]
        since: Option<String>,
        /// Only this function.
        #[arg(long)]
        name: Option<String>,
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A call tree, indented, with each span's share of its root.
    Tree {
        /// The trace id: the `trace_id` column in decimal (a local trace's
        /// root span id), or the whole 128-bit id as 32 hex digits.
        #[arg(required_unless_present = "last", conflicts_with = "last")]
        trace_id: Option<query::traces::TraceKey>,
        /// The latest trace (with `--name`: the latest containing that function).
        #[arg(long)]
        last: bool,
        /// With `--last`: a function the trace must contain.
        #[arg(long, requires = "last")]
        name: Option<String>,
    },
    /// Follows new spans as they are written, until Ctrl-C.
    Tail {
        /// Only errors and panics.
        #[arg(long)]
        errors_only: bool,
        /// How often to look for new spans, in milliseconds.
        #[arg(long, default_value_t = 500, value_name = "MS")]
        interval_ms: u64,
        /// Stop after this many spans (for scripts and tests).
        #[arg(long, hide = true)]
        max: Option<usize>,
    },
    /// CPU and memory over time, from the resource sampler.
    Resources {
        /// Only samples this recent.
        #[arg(long, value_name = "WINDOW")]
        since: Option<String>,
    },
    /// The writer's figures: written, dropped, errors, queue depth, batches, partitions.
    Stats,
    /// Runs one retention pass with the config's `[retention]` rules: drops
    /// (after archiving) the partitions older than `hours`.
    Retention {
        /// Shows what would be dropped, and changes nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keeps this many hours instead of the config's `retention.hours`.
        #[arg(long, allow_negative_numbers = true)]
        hours: Option<i64>,
    },
    /// Serves the dashboard: overview, traces, functions, resources, health,
    /// live, a JSON API and `/metrics`, read-only over the file, until Ctrl-C.
    Serve {
        /// The address to listen on; other than loopback, anyone who can
        /// reach it reads the file.
        #[arg(long, default_value = "127.0.0.1:7878", value_name = "IP:PORT")]
        addr: std::net::SocketAddr,
    },
    /// Evaluates the config's `[[alerts]]` rules over their windows and
    /// prints each one's state. Exit code: 0 when none fires, 1 when any
    /// fires, 2 on a config or file error (for cron, CI and health probes).
    Check {
        /// Appends each rule's change of state to the file's `alert_events`.
        #[arg(long)]
        record: bool,
    },
    /// The history of the rules' states, as `check --record` kept it.
    Alerts {
        /// Only changes this recent.
        #[arg(long, value_name = "WINDOW")]
        since: Option<String>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
    },
    /// Compares each function's calls, error rate and latency in two
    /// windows, or in a baseline file and this one, and says which got
    /// slower: a Mann-Whitney U test on the durations, and a change of the
    /// median of at least `--min-change` percent.
    Diff {
        /// The earlier window: `2h..1h` (two hours ago to one hour ago) or
        /// `1h` (the last hour) [default: as long as `--after`, just before
        /// it; with `--baseline`, the whole baseline file].
        #[arg(long, value_name = "RANGE")]
        before: Option<String>,
        /// The later window, of this file [default: 1h; with `--baseline`,
        /// the whole file].
        #[arg(long, value_name = "RANGE")]
        after: Option<String>,
        /// The file to compare with, in place of an earlier window of this
        /// one (before and after a deploy, two benchmark runs).
        #[arg(long, value_name = "PATH")]
        baseline: Option<PathBuf>,
        /// Only functions of this group.
        #[arg(long)]
        group: Option<String>,
        /// The test's significance level.
        #[arg(long, default_value_t = 0.01)]
        alpha: f64,
        /// The smallest change of the median, in percent, that is a verdict.
        #[arg(
            long,
            default_value_t = 10.0,
            value_name = "PERCENT",
            allow_negative_numbers = true
        )]
        min_change: f64,
        /// The fewest calls a side needs for a verdict.
        #[arg(long, default_value_t = 20)]
        min_calls: usize,
        /// Exits with 1 when a function got slower (for CI).
        #[arg(long, value_enum)]
        fail_on: Option<FailOn>,
    },
    /// Writes spans as a Chrome trace (Perfetto), CSV or JSON lines, or
    /// sends them (and resource samples, as gauges) to an OpenTelemetry
    /// collector over OTLP/HTTP (`--format otlp`). With otlp, exit code 1
    /// means spans were refused or not delivered, 2 an error.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// The output file (chrome, csv, jsonl).
        #[arg(
            short,
            long,
            value_name = "FILE",
            required_if_eq_any = [("format", "chrome"), ("format", "csv"), ("format", "jsonl")]
        )]
        output: Option<PathBuf>,
        /// Only this trace.
        #[arg(long, conflicts_with = "since")]
        trace: Option<i64>,
        /// Only spans this recent.
        #[arg(long, value_name = "WINDOW")]
        since: Option<String>,
        /// otlp: the collector, `http://HOST:4318` (`/v1/traces` is added) or
        /// a full `.../v1/traces` URL [default: `[otlp] endpoint` of the config].
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// otlp: a header for every request (repeatable), added to the
        /// config's `[otlp] headers`.
        #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// otlp: the resource's `service.name` [default: `[otlp]
        /// service_name`, else each process's program name].
        #[arg(long, value_name = "NAME")]
        service_name: Option<String>,
        /// otlp: the resource's `host.name` [default: this machine's].
        #[arg(long, value_name = "NAME")]
        host_name: Option<String>,
        /// otlp: the most spans in one request [default: `[otlp] max_batch`, else 512].
        #[arg(long, value_name = "N", value_parser = parse_max_batch)]
        max_batch: Option<usize>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    P99,
    Calls,
    Errors,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Slower,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Chrome,
    Csv,
    Jsonl,
    /// OTLP/HTTP protobuf to a collector (`--endpoint`), not a file.
    Otlp,
}

/// `--header NAME=VALUE`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {text:?}"))?;
    let name = name.trim();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("expected a header name before `=`, got {name:?}"));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err("a header value may not hold control characters".into());
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// `--max-batch`: 1 to `MAX_BATCH_LIMIT` spans, as `[otlp] max_batch`.
fn parse_max_batch(text: &str) -> Result<usize, String> {
    let limit = monitor_runtime::otlp::MAX_BATCH_LIMIT;
    match text.parse::<usize>() {
        Ok(n) if (1..=limit).contains(&n) => Ok(n),
        _ => Err(format!("expected from 1 to {limit} spans, got {text:?}")),
    }
}

/// What went wrong, for the user: printed after `monitor: `.
#[derive(Debug)]
pub struct Failure(String);

impl<T: std::fmt::Display> From<T> for Failure {
    fn from(message: T) -> Self {
        Failure(message.to_string())
    }
}

impl Command {
    /// Commands whose exit code 1 means a finding (a rule fires, a function
    /// got slower): their errors exit with 2 instead.
    fn reports_findings(&self) -> bool {
        matches!(
            self,
            Command::Check { .. }
                | Command::Diff { .. }
                | Command::Export {
                    format: ExportFormat::Otlp,
                    ..
                }
        )
    }

    /// What clap cannot say: `--output` is for files, the OTLP options for
    /// `--format otlp`.
    fn check_usage(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        let Command::Export {
            format,
            output,
            endpoint,
            headers,
            service_name,
            host_name,
            max_batch,
            ..
        } = self
        else {
            return Ok(());
        };
        let conflict = |message: String| {
            Err(Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message))
        };
        if *format == ExportFormat::Otlp {
            if output.is_some() {
                return conflict(
                    "the argument '--output <FILE>' cannot be used with '--format otlp', which \
                     sends to --endpoint"
                        .into(),
                );
            }
        } else {
            let otlp_only = [
                ("--endpoint", endpoint.is_some()),
                ("--header", !headers.is_empty()),
                ("--service-name", service_name.is_some()),
                ("--host-name", host_name.is_some()),
                ("--max-batch", max_batch.is_some()),
            ];
            if let Some((flag, _)) = otlp_only.iter().find(|(_, given)| *given) {
                return conflict(format!("the argument '{flag}' is for '--format otlp' only"));
            }
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    // `monitor ... | head` ends quietly when `head` has what it wants,
    // like any Unix tool, instead of panicking on a closed pipe.
    #[cfg(unix)]
    // SAFETY: called first thing, before any other thread exists; SIG_DFL
    // is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if let Some(Err(e)) = cli.command.as_ref().map(Command::check_usage) {
        e.exit();
    }
    match run(&cli) {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("monitor: {message}");
            if cli.command.as_ref().is_some_and(Command::reports_findings) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    // Windows are checked before the file is opened: a typo is named first.
    let since = |window: &Option<String>| window.as_deref().map(window::since).transpose();
    let path = db::resolve_path(cli.db.as_deref(), cli.config.as_deref())?;
    let out = render::Out::new(cli.json);
    let result = match &cli.command {
        None => {
            let db = db::Db::open(&path)?;
            commands::summary::run(&db, &out, None, None, SortBy::Calls)
        }
        Some(Command::Summary {
            since: s,
            group,
            sort,
        }) => {
            let since = since(s)?;
            commands::summary::run(&db::Db::open(&path)?, &out, since, group.as_deref(), *sort)
        }
        Some(Command::Errors {
            since: s,
            name,
            limit,
        }) => {
            let since = since(s)?;
            commands::errors::run(&db::Db::open(&path)?, &out, since, name.as_deref(), *limit)
        }
        Some(Command::Tree {
            trace_id,
            last: _,
            name,
        }) => commands::tree::run(&db::Db::open(&path)?, &out, *trace_id, name.as_deref()),
        Some(Command::Tail {
            errors_only,
            interval_ms,
            max,
        }) => commands::tail::run(
            &db::Db::open(&path)?,
            &out,
            *errors_only,
            *interval_ms,
            *max,
        ),
        Some(Command::Resources { since: s }) => {
            let since = since(s)?;
            commands::resources::run(&db::Db::open(&path)?, &out, since)
        }
        Some(Command::Stats) => commands::stats::run(&db::Db::open(&path)?, &out),
        Some(Command::Retention { dry_run, hours }) => {
            let mut rules = db::load_config(cli.config.as_deref())?.retention;
            if let Some(hours) = hours {
                rules.hours = *hours;
            }
            commands::retention::run(&path, &out, &rules, *dry_run)
        }
        Some(Command::Serve { addr }) => {
            let retention = db::load_config(cli.config.as_deref())?.retention;
            serve::run(&path, *addr, retention.hours)
        }
        Some(Command::Export {
            format: ExportFormat::Otlp,
            trace,
            since: s,
            endpoint,
            headers,
            service_name,
            host_name,
            max_batch,
            output: _,
        }) => {
            let options = commands::export_otlp::Options {
                endpoint: endpoint.clone(),
                headers: headers.clone(),
                service_name: service_name.clone(),
                host_name: host_name.clone(),
                max_batch: *max_batch,
                trace: *trace,
                since: since(s)?,
            };
            let config = db::load_config(cli.config.as_deref())?;
            let db = db::Db::open(&path)?;
            return commands::export_otlp::run(&db, &out, &config, options);
        }
        Some(Command::Export {
            format,
            output,
            trace,
            since: s,
            ..
        }) => {
            let since = since(s)?;
            // Required by clap for every file format.
            let output = output.as_deref().expect("--output");
            commands::export::run(&db::Db::open(&path)?, *format, output, *trace, since)
        }
        Some(Command::Check { record }) => {
            let config = db::load_config(cli.config.as_deref())?;
            if config.alerts.is_empty() {
                let read = cli
                    .config
                    .clone()
                    .or_else(|| std::env::var_os(monitor_runtime::ENV_CONFIG).map(PathBuf::from))
                    .unwrap_or_else(|| "monitor.toml".into());
                return Err(Failure(format!(
                    "no [[alerts]] rules in {}: nothing to check",
                    read.display()
                )));
            }
            let db = db::Db::open(&path)?;
            return commands::check::run(&db, &out, &config.alerts, window::now_ns(), *record);
        }
        Some(Command::Diff {
            before,
            after,
            baseline,
            group,
            alpha,
            min_change,
            min_calls,
            fail_on,
        }) => {
            let rules = commands::diff::rules(*alpha, *min_change, *min_calls)?;
            let windows = commands::diff::Windows::resolve(
                before.as_deref(),
                after.as_deref(),
                baseline.is_some(),
                window::now_ns(),
            )?;
            let current = db::Db::open(&path)?;
            let old = baseline.as_deref().map(db::Db::open).transpose()?;
            let slower_fails = *fail_on == Some(FailOn::Slower);
            let dbs = (old.as_ref().unwrap_or(&current), &current);
            return commands::diff::run(&out, dbs, &windows, group.as_deref(), rules, slower_fails);
        }
        Some(Command::Alerts { since: s, rule }) => {
            let since = since(s)?;
            commands::alerts::run(&db::Db::open(&path)?, &out, since, rule.as_deref())
        }
    };
    result.map(|()| ExitCode::SUCCESS)
}
