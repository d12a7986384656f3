//! The `agentgateway` binary: parse the command line, then either serve (load the config, run the
//! library's gateway until SIGTERM/SIGINT, drain, exit 0) or run a `keys` command against a
//! running gateway's admin API ([`agentgateway::cli`]). When serving, diagnostics go to stderr
//! and stdout carries only the access log.

#![deny(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentgateway::config::{check, Config, LogFormat};
use agentgateway::gateway::{Gateway, Listeners, Options};
use clap::{Parser, Subcommand};

/// An LLM gateway: OpenAI-compatible proxy that meters every token.
#[derive(Parser)]
#[command(
    name = "agentgateway",
    version,
    about,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Config file (YAML).
    #[arg(
        short = 'f',
        short_alias = 'c',
        long = "file",
        alias = "config",
        value_name = "FILE",
        required = true
    )]
    file: Option<PathBuf>,
    /// Check the config and exit 0 (valid) or 1, listing every problem on stderr as
    /// `FILE:LINE:COLUMN: field.path: message`.
    #[arg(long)]
    validate_only: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Manage virtual keys through a running gateway's admin API.
    Keys(Box<agentgateway::cli::KeysArgs>),
    /// Print the config file's JSON Schema (the source of `schema/config.json`).
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.file) {
        (Some(Command::Keys(args)), _) => agentgateway::cli::keys::run(*args),
        (Some(Command::Schema), _) => {
            print!("{}", agentgateway::config::schema::config_schema_text());
            ExitCode::SUCCESS
        }
        (None, Some(file)) if cli.validate_only => validate_only(&file),
        (None, Some(file)) => serve(&file),
        // clap already requires --file unless a subcommand is given.
        (None, None) => {
            eprintln!("error: --file is required");
            ExitCode::FAILURE
        }
    }
}

fn serve(file: &Path) -> ExitCode {
    let config = match load(file) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    init_diagnostics(&config);
    let options = match log_format_override() {
        Ok(log_format) => Options {
            log_format,
            ..Options::default()
        },
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    match run(config, options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `--validate-only`: every problem at once (structure, values, CEL), then what only building
/// the gateway finds (files it reads, the admin exposure rule), each placed in the file.
fn validate_only(file: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let mut checked = check::check_text(&text, &env);
    let mut diagnostics = std::mem::take(&mut checked.diagnostics);
    if let Some(mut config) = checked.config.take() {
        init_diagnostics(&config);
        let built = agentgateway::cli::env::apply_env(&mut config, &env)
            .and_then(|()| log_format_override())
            .and_then(|log_format| {
                let options = Options {
                    log_format,
                    ..Options::default()
                };
                Gateway::build(&config, options).map(|_| ())
            });
        if let Err(message) = built {
            diagnostics.push(checked.diagnostic_for(&message));
        }
    }
    if diagnostics.is_empty() {
        eprintln!("{}: configuration is valid", file.display());
        return ExitCode::SUCCESS;
    }
    for diagnostic in &diagnostics {
        eprintln!("{}:{diagnostic}", file.display());
    }
    let count = diagnostics.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    eprintln!("{}: {count} {noun}", file.display());
    ExitCode::FAILURE
}

fn load(file: &Path) -> Result<Config, String> {
    let mut config = Config::load(file).map_err(|e| e.to_string())?;
    agentgateway::cli::env::apply_env(&mut config, &|name| std::env::var(name).ok())?;
    Ok(config)
}

fn log_format_override() -> Result<Option<LogFormat>, String> {
    match std::env::var("LOG_FORMAT").as_deref() {
        Err(_) => Ok(None),
        Ok("json") => Ok(Some(LogFormat::Json)),
        Ok("text") => Ok(Some(LogFormat::Text)),
        Ok(other) => Err(format!("LOG_FORMAT={other:?}: expected text or json")),
    }
}

fn init_diagnostics(config: &Config) {
    let level = config.config.logging.level.as_deref().unwrap_or("info");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(config: Config, options: Options) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        // Installed before the listeners open, so an early SIGTERM still drains.
        let mut signals = Signals::new()?;
        let gateway = Gateway::build(&config, options)?;
        let listeners = Listeners::bind(&config).await.map_err(|e| e.to_string())?;
        let running = gateway.start(listeners).await.map_err(|e| e.to_string())?;
        tracing::info!(
            llm = %running.llm_addr,
            stats = ?running.stats_addr,
            readiness = ?running.readiness_addr,
            admin = ?running.admin_addr,
            "agentgateway listening"
        );
        signals.next().await;
        tracing::info!("shutting down: draining in-flight requests (signal again to stop now)");
        tokio::spawn(async move {
            signals.next().await;
            tracing::warn!("second signal: stopping without waiting for in-flight requests");
            std::process::exit(1);
        });
        running.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    })
}

/// SIGTERM and SIGINT, whichever comes first.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        Ok(Signals { term, int })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
