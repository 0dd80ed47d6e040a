use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use stir_runtime::config::parse_duration;
use stir_runtime::executor::RunStatus;
use stir_runtime::Config;

/// Run a frozen stir plan: fire its schedules, build its models, record history.
#[derive(Parser)]
#[command(name = "stir-runtime", version)]
#[command(group(clap::ArgGroup::new("manual").args(["once", "bootstrap"])))]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The plan written by `stir plan -o plan.json`.
    plan: Option<PathBuf>,
    /// Run one schedule now and exit with its status (0 ok, 1 failed).
    #[arg(long, value_name = "SCHEDULE")]
    once: Option<String>,
    /// With --once or --bootstrap: run even if the history shows a run in progress.
    #[arg(long, requires = "manual")]
    force: bool,
    /// With --once: rebuild incremental models from scratch (a new table swapped in).
    #[arg(long, requires = "once")]
    full_refresh: bool,
    /// Print each schedule's next fires and statements; touch no server.
    #[arg(long, conflicts_with = "once")]
    dry_run: bool,
    /// Build every model whose table does not exist yet (dependencies first), then exit:
    /// a new warehouse, or models added to the plan. Exit 0 ok, 1 failed.
    #[arg(long, conflicts_with_all = ["once", "dry_run"])]
    bootstrap: bool,
    /// With --bootstrap: give up after this long.
    #[arg(long, default_value = "6h", value_parser = parse_duration, requires = "bootstrap")]
    bootstrap_timeout: Duration,
    /// On SIGTERM/SIGINT, how long running work may finish before it is cancelled.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    grace: Duration,
    /// Run only a plan of this project; any other plan is refused (exit 2) before anything
    /// connects. Overrides `STIR_PROJECT`.
    #[arg(long, value_name = "NAME")]
    project: Option<String>,
    /// Serve /healthz, /metrics and the operations console on this address, e.g.
    /// 127.0.0.1:9464 (docs/console.md; writes need STIR_CONSOLE_TOKEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Print recent runs from the history in PostgreSQL.
    History {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        schedule: Option<String>,
        /// Each model's last successful build and its age instead of runs.
        #[arg(long, conflicts_with = "schedule")]
        models: bool,
        /// With --models: the plan, for each model's freshness and whether it is stale.
        #[arg(long, value_name = "PLAN", requires = "models")]
        plan: Option<PathBuf>,
    },
    /// `stir-runtime plan.json rollback SYNC`: swap the backup the sync kept back in (the
    /// table it replaces becomes the backup). Exit 0 rolled back, 1 refused or failed
    /// (nothing changed), 2 bad invocation.
    Rollback {
        /// The sync's name in the plan.
        sync: String,
        /// Roll back even when the backup has far fewer rows than the live table, or none
        /// (the sync's max-shrink and empty guards).
        #[arg(long)]
        allow_shrink: bool,
        /// Give up after this long.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// `stir-runtime plan.json run SELECTOR…`: build exactly the models the selectors pick
    /// (as `stir ls`: MODEL, +MODEL, MODEL+, tag:NAME, path:DIR), now, in dependency order with
    /// the plan's threads, recorded as a run of `@run`. Refused (exit 2) while a schedule that
    /// builds a selected model is running. Exit 0 ok, 1 a model failed.
    Run {
        /// What to build: MODEL, +MODEL (with what it reads), MODEL+ (with what reads it),
        /// tag:NAME, path:DIR; several are a union.
        #[arg(required = true, value_name = "SELECTOR")]
        select: Vec<String>,
        /// Leave out the models these selectors pick.
        #[arg(long, value_name = "SELECTOR", num_args = 1..)]
        exclude: Vec<String>,
        /// Rebuild incremental models from scratch (a new table swapped in).
        #[arg(long)]
        full_refresh: bool,
        /// Build even while an owner (or another heavy run) is running: for a run the history
        /// shows as running that is known to be dead.
        #[arg(long)]
        force: bool,
        /// Give up after this long (at most 6h; default: the longest timeout of the selected
        /// models' schedules).
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::CouldNotRun.into();
        }
    };
    runtime.block_on(async_main(cli)).into()
}

async fn async_main(cli: Cli) -> Exit {
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    config.grace = cli.grace;
    config.listen = cli.listen;
    if let Some(project) = cli.project {
        if project.trim().is_empty() {
            return fail("--project is empty: name the one project this runtime may run");
        }
        config.project = Some(project.trim().to_string());
    }
    let rollback = match &cli.command {
        Some(Command::Rollback {
            sync,
            allow_shrink,
            timeout,
        }) => Some((sync.clone(), *allow_shrink, *timeout)),
        _ => None,
    };
    if rollback.is_some() && (cli.once.is_some() || cli.bootstrap || cli.dry_run) {
        return fail("rollback runs on its own: drop --once, --bootstrap and --dry-run");
    }
    if matches!(cli.command, Some(Command::Run { .. }))
        && (cli.once.is_some() || cli.bootstrap || cli.dry_run)
    {
        return fail("run builds what it selects on its own: drop --once, --bootstrap and --dry-run (`--dry-run` shows a schedule's statements)");
    }
    if let Some(Command::History { .. }) = &cli.command {
        if cli.plan.is_some() || cli.once.is_some() || cli.bootstrap {
            return fail(
                "`history` takes no plan: stir-runtime history [--schedule NAME | --models --plan plan.json]",
            );
        }
    }
    if let Some(Command::History {
        models: true, plan, ..
    }) = &cli.command
    {
        let plan = match plan.as_deref().map(|p| stir_runtime::load_plan(p, &config)) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => return fail(&e.to_string()),
        };
        return match stir_runtime::model_ages(&config, plan.as_ref(), chrono::Utc::now()).await {
            Ok(t) => {
                print_out(&t);
                Exit::Success
            }
            Err(e) => fail(&e.to_string()),
        };
    }
    if let Some(Command::History {
        limit, schedule, ..
    }) = cli.command
    {
        return match stir_runtime::history_table(&config, limit, schedule.as_deref()).await {
            Ok(t) => {
                print_out(&t);
                Exit::Success
            }
            Err(e) => fail(&e.to_string()),
        };
    }
    let Some(path) = cli.plan else {
        return fail(
            "no plan given: stir-runtime plan.json (write one with `stir plan -o plan.json`)",
        );
    };
    if config.signing_key_in_env {
        tracing::warn!("STIR_PLAN_KEY, a key that can sign plans, is in this runtime's environment: plans are verified with its public key, but anyone who reads this environment can sign a plan; give runtimes STIR_PLAN_PUBLIC_KEY instead");
    }
    let plan = match stir_runtime::load_plan(&path, &config) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    if cli.dry_run {
        return match stir_runtime::dryrun::render(&plan, chrono::Utc::now()) {
            Ok(text) => {
                print_out(&text);
                Exit::Success
            }
            Err(e) => fail(&e.to_string()),
        };
    }
    // The named serving targets' and webhooks' URLs, checked before anything runs.
    let env = |k: &str| std::env::var(k).ok();
    if let Err(e) = config
        .read_targets(&plan, env)
        .and_then(|()| config.read_webhooks(&plan, env))
    {
        return fail(&e.to_string());
    }
    if let Some((sync, allow_shrink, timeout)) = rollback {
        return match stir_runtime::rollback_with(
            plan,
            config,
            &sync,
            allow_shrink,
            timeout,
            stir_runtime::Options::default(),
        )
        .await
        {
            Ok(Ok(rows)) => {
                println!("rollback: sync `{sync}` rolled back; {rows} rows live (the table it replaced is the backup now)");
                Exit::Success
            }
            Ok(Err(e)) => {
                eprintln!("error: {e}");
                Exit::RunFailed
            }
            Err(e) => fail(&e.to_string()),
        };
    }
    if let Some(Command::Run {
        select,
        exclude,
        full_refresh,
        force,
        timeout,
    }) = &cli.command
    {
        let options = stir_runtime::Options {
            force: *force,
            full_refresh: *full_refresh,
            ..stir_runtime::Options::default()
        };
        return manual(plan, config, select, exclude, *timeout, options).await;
    }
    if cli.bootstrap {
        return match stir_runtime::bootstrap_with(
            plan,
            config,
            stir_runtime::Options {
                force: cli.force,
                ..stir_runtime::Options::default()
            },
            cli.bootstrap_timeout,
            stir_runtime::shutdown::signal(),
        )
        .await
        {
            Ok(b) => match b.status {
                None => {
                    println!("bootstrap: every model of the plan exists; nothing to build");
                    Exit::Success
                }
                Some(RunStatus::Ok) => {
                    println!(
                        "bootstrap: built {} models: {}",
                        b.models.len(),
                        b.models.join(", ")
                    );
                    Exit::Success
                }
                Some(status) => {
                    eprintln!(
                        "bootstrap: {} (see `stir-runtime history --schedule {}`)",
                        status.as_str(),
                        stir_runtime::BOOTSTRAP
                    );
                    Exit::RunFailed
                }
            },
            Err(e) => fail(&e.to_string()),
        };
    }
    if let Some(schedule) = cli.once {
        return match stir_runtime::run_once_with(
            plan,
            config,
            &schedule,
            stir_runtime::Options {
                force: cli.force,
                full_refresh: cli.full_refresh,
                ..stir_runtime::Options::default()
            },
            stir_runtime::shutdown::signal(),
        )
        .await
        {
            Ok(RunStatus::Ok) => Exit::Success,
            Ok(status) => {
                eprintln!("schedule `{schedule}`: {}", status.as_str());
                Exit::RunFailed
            }
            Err(e) => fail(&e.to_string()),
        };
    }
    // SIGHUP reloads the plan from `path` (docs/operations.md, "Upgrading to a new plan").
    let options = stir_runtime::Options {
        reload: Some(stir_runtime::reload::Source::on_sighup(path)),
        ..stir_runtime::Options::default()
    };
    match stir_runtime::run_with(plan, config, stir_runtime::shutdown::terminate(), options).await {
        Ok(()) => Exit::Success,
        Err(e) => fail(&e.to_string()),
    }
}

/// `run SELECTOR…`: the selected models built now.
async fn manual(
    plan: stir_plan::Plan,
    config: Config,
    select: &[String],
    exclude: &[String],
    timeout: Option<Duration>,
    options: stir_runtime::Options,
) -> Exit {
    let refresh = if options.full_refresh {
        " (full refresh)"
    } else {
        ""
    };
    let shutdown = stir_runtime::shutdown::signal();
    let ran =
        stir_runtime::manual::run_manual(plan, config, select, exclude, timeout, options, shutdown);
    match ran.await {
        Ok(ran) => {
            let line = format!(
                "run: {} {} model{}{refresh}: {} (`stir-runtime history --schedule {}`)",
                ran.status.as_str(),
                ran.models.len(),
                if ran.models.len() == 1 { "" } else { "s" },
                ran.models.join(", "),
                ran.recorded_as
            );
            if ran.status == RunStatus::Ok {
                println!("{line}");
                Exit::Success
            } else {
                eprintln!("{line}");
                Exit::RunFailed
            }
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// How the process ends; `From<Exit> for ExitCode` is the one place codes are given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    Success,
    /// A `--once`, `--bootstrap` or `rollback` that did not end ok (its status is printed).
    RunFailed,
    /// A bad plan, environment or argument: nothing ran.
    CouldNotRun,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(match e {
            Exit::Success => 0,
            Exit::RunFailed => 1,
            Exit::CouldNotRun => 2,
        })
    }
}

fn fail(message: &str) -> Exit {
    eprintln!("error: {message}");
    Exit::CouldNotRun
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only on a terminal: journald and log files get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// Print to stdout; a closed pipe (`| head`) is not an error.
fn print_out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
