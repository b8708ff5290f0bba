//! `gregor`: the command line for gregor's Kafka services.
//!
//! Exit codes: 0 success; 1 a runtime failure (Kafka refused, unreachable, ...); 2 a usage
//! error (bad flag, bad manifest, bad input line, bad topic name) that the user fixes before
//! retrying; 3 `groups lag --alert-lag N` found a lag above N; 4 `groups reset-offsets`
//! refused because the group has active members.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;
mod codec;
mod manifest;
mod output;
mod scan;

use cmd::{consume, dev, dlq, groups, plan, produce, topics};

/// gregor: event-driven services on Apache Kafka.
///
/// Connection: --bootstrap-server, or KAFKA_BOOTSTRAP_SERVERS (and other KAFKA_* properties),
/// or --config FILE (.properties); without any, the local broker of `gregor dev up`.
#[derive(Debug, Parser)]
#[command(
    name = "gregor",
    version,
    about,
    propagate_version = true,
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command understands.
#[derive(Debug, clap::Args)]
pub(crate) struct Global {
    /// Brokers to connect to (host:port, comma-separated).
    #[arg(long, short = 'b', global = true, value_name = "HOST:PORT,...")]
    pub(crate) bootstrap_server: Option<String>,
    /// A Kafka client .properties file (bootstrap.servers, security.protocol, ...).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// One client property, Kafka-named; repeatable.
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    pub(crate) property: Vec<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Never colour output (colours are only used on a terminal anyway; NO_COLOR also works).
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
}

/// The exit codes, shown under `gregor --help`.
const EXIT_CODES: &str = "Exit codes:
  0  success
  1  runtime failure: Kafka or the schema registry refused or could not be reached
  2  usage or input error: a bad flag, manifest, input line or topic name (fix it and retry)
  3  groups lag --alert-lag N: the group's total lag is above N
  4  groups reset-offsets: refused, the group has active members (stop them first)";

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe, delete and grow topics.
    #[command(subcommand)]
    Topics(topics::Topics),
    /// Send records read from stdin or a file, one per line (KEY<TAB>VALUE or JSON lines).
    Produce(produce::Produce),
    /// Read records from a topic: from the beginning, the end, a time or an offset.
    Consume(consume::Consume),
    /// Follow a topic from its end (consume --from end --follow).
    Tail(consume::Consume),
    /// Consumer groups: list, describe, lag, reset offsets.
    #[command(subcommand)]
    Groups(groups::Groups),
    /// Dead-letter topics: inspect records and their error headers, replay them.
    #[command(subcommand)]
    Dlq(dlq::Dlq),
    /// Capacity planning: storage and network for a topic's expected traffic.
    Plan(plan::Plan),
    /// The local single-node Kafka for development (the one tests share).
    #[command(subcommand)]
    Dev(dev::Dev),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    /// A usage error (exit 2): the user's input is wrong.
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 2,
            error: error.into(),
        }
    }

    /// A failure with a specific exit code (see [`EXIT_CODES`]).
    pub(crate) fn with_code(code: u8, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        let error = error.into();
        // Bad configuration is the user's to fix, like a bad flag.
        let code = match error.downcast_ref::<gregor_client::Error>() {
            Some(gregor_client::Error::Config { .. }) => 2,
            _ => 1,
        };
        Failure { code, error }
    }
}

pub(crate) type CliResult<T = ()> = Result<T, Failure>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One clear line, not a page of usage.
            let text = e.render().to_string();
            let mut lines = text.lines();
            let mut first = lines
                .next()
                .unwrap_or("error: invalid arguments")
                .to_owned();
            // "required arguments were not provided:" lists them on the indented lines below.
            if first.ends_with(':') {
                let listed: Vec<&str> = lines
                    .take_while(|l| l.starts_with("  "))
                    .map(str::trim)
                    .collect();
                first = format!("{first} {}", listed.join(", "));
            }
            eprintln!("{first} (see `gregor --help`)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    let out = output::Output::new(cli.global.json, cli.global.no_color);
    match cli.command {
        Command::Topics(t) => topics::run(t, &cli.global, &out).await,
        Command::Produce(p) => produce::run(p, &cli.global, &out).await,
        Command::Consume(c) => consume::run(c, false, &cli.global, &out).await,
        Command::Tail(c) => consume::run(c, true, &cli.global, &out).await,
        Command::Groups(g) => groups::run(g, &cli.global, &out).await,
        Command::Dlq(d) => dlq::run(d, &cli.global, &out).await,
        Command::Plan(p) => plan::run(&p, &out),
        Command::Dev(d) => dev::run(d).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "gregor", &mut std::io::stdout());
            Ok(())
        }
    }
}
