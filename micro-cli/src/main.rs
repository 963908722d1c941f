//! `micro`: a command-line tool for NATS in natscli's words. It publishes, subscribes, sends requests and
//! answers them; finds, inspects and calls services of the NATS Service API (ADR-32) and runs demo services;
//! manages JetStream streams and consumers, Key/Value buckets and object stores; and benchmarks a server.
//!
//! It is built on this workspace's blocking client (`nats-blocking`), the `micro` library (services and
//! discovery) and `nats-jetstream`; a service author who depends on `micro` gets none of this crate's
//! command-line dependencies.
//!
//! ```sh
//! cargo run -p micro-cli -- --help                 # or build it and run target/debug/micro
//! micro --server nats://127.0.0.1:4222 ls          # every service that answers, in a table
//! micro stats demo-service                         # its endpoints' statistics, with totals
//! micro req demo.ECHO hello --count 100            # a hundred requests; a progress bar on a terminal
//! ```
//!
//! The server is `--server`, else `$NATS_URL`, else `nats://127.0.0.1:4222`; `--json` prints replies as the
//! server or the services sent them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nats_blocking::{Client, ConnectOptions};

/// `println!` that ends the program quietly when stdout is closed (`micro ls | head`), never with a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod bench;
mod columns;
mod demo;
mod human;
mod js;
mod messaging;
mod services;
mod table;

#[derive(Parser)]
#[command(name = "micro", version, about = "NATS messaging and the Service API (ADR-32) from the command line")]
struct Cli {
    /// Server URL (several comma-separated); default $NATS_URL, else nats://127.0.0.1:4222.
    #[arg(short, long, global = true)]
    server: Option<String>,
    /// How long to wait for replies: 500ms, 5s, 1m.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print replies as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// User name.
    #[arg(long, global = true)]
    user: Option<String>,
    /// Password.
    #[arg(long, global = true)]
    password: Option<String>,
    /// Token.
    #[arg(long, global = true)]
    token: Option<String>,
    /// File holding an nkey seed (SU...) to sign the server's nonce with.
    #[arg(long, global = true, value_name = "FILE")]
    nkey: Option<PathBuf>,
    /// JWT user credentials file (.creds).
    #[arg(long, global = true, value_name = "FILE")]
    creds: Option<PathBuf>,
    /// CA certificates (PEM) to trust instead of the system's.
    #[arg(long, global = true, value_name = "FILE")]
    tlsca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --tlskey.
    #[arg(long, global = true, value_name = "FILE", requires = "tlskey")]
    tlscert: Option<PathBuf>,
    /// Private key (PEM) of --tlscert.
    #[arg(long, global = true, value_name = "FILE", requires = "tlscert")]
    tlskey: Option<PathBuf>,
    /// Start TLS before the server's INFO (servers with handshake_first).
    #[arg(long, global = true)]
    tlsfirst: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Messaging(messaging::Messaging),
    #[command(flatten)]
    Services(services::ServiceCommand),
    /// The service commands under natscli's name for them: service ls|ping|info|stats|request|serve.
    #[command(subcommand)]
    Service(services::ServiceCommand),
    /// Run the demo service `demo-service` until SIGINT or SIGTERM, then stop it gracefully.
    Demo,
    /// Measure publish, subscribe and request/reply rates against the server, like `nats bench`.
    #[command(subcommand)]
    Bench(bench::Bench),
    /// JetStream streams: ls, add, info, rm, purge, get.
    #[command(subcommand)]
    Stream(js::StreamCommand),
    /// JetStream publishing: pub (waits for the stream's acknowledgement).
    #[command(subcommand)]
    Js(js::JsCommand),
    /// JetStream pull consumers: ls, add, info, rm, next.
    #[command(subcommand)]
    Consumer(js::ConsumerCommand),
    /// Key/Value buckets: add, put, get, del, history, watch, ls, info, rm.
    #[command(subcommand)]
    Kv(js::KvCommand),
    /// Object stores: add, put, get, ls, info, rm, watch, seal.
    #[command(subcommand)]
    Object(js::ObjectCommand),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = number.parse().map_err(|_| format!("not a duration: {s:?} (try 500ms, 5s, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// The server(s) to connect to: `--server`, else `$NATS_URL`, else `nats://127.0.0.1:4222`.
fn server_url(cli: &Cli) -> String {
    cli.server.clone().or_else(|| std::env::var("NATS_URL").ok()).unwrap_or_else(|| "nats://127.0.0.1:4222".into())
}

fn connect(cli: &Cli) -> Result<Client, String> {
    let url = server_url(cli);
    let mut options = ConnectOptions::new()
        .server(&url)
        .name("micro")
        .connect_timeout(cli.timeout.min(Duration::from_secs(5)))
        .request_timeout(cli.timeout)
        .flush_timeout(cli.timeout)
        .max_reconnects(Some(3));
    if let (Some(u), Some(p)) = (&cli.user, &cli.password) {
        options = options.user_and_password(u, p);
    }
    if let Some(t) = &cli.token {
        options = options.token(t);
    }
    if let Some(path) = &cli.nkey {
        let seed = std::fs::read_to_string(path).map_err(|e| format!("nkey file {}: {e}", path.display()))?;
        options = options.nkey(seed.trim());
    }
    if let Some(path) = &cli.creds {
        options = options.credentials_file(path);
    }
    if let Some(path) = &cli.tlsca {
        options = options.add_root_certificates(path);
    }
    if let (Some(cert), Some(key)) = (&cli.tlscert, &cli.tlskey) {
        options = options.add_client_certificate(cert, key);
    }
    if cli.tlsfirst {
        options = options.tls_first();
    }
    Client::connect(options).map_err(|e| match e {
        nats_blocking::Error::Connect(why) => format!("cannot connect to {url}: {why}"),
        e => e.to_string(),
    })
}

fn failed(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn run(cli: &Cli) -> Result<(), String> {
    if let Command::Bench(b) = &cli.command {
        // Benchmarks open connections of their own, as many as they are told.
        return bench::run(cli, b);
    }
    let client = connect(cli)?;
    match &cli.command {
        Command::Messaging(c) => messaging::run(cli, &client, c)?,
        Command::Services(c) | Command::Service(c) => services::run(cli, &client, c)?,
        Command::Demo => demo::demo(cli, client)?,
        Command::Bench(_) => unreachable!("handled above"),
        Command::Stream(c) => js::stream(cli, &client, c)?,
        Command::Js(c) => js::js(cli, &client, c)?,
        Command::Consumer(c) => js::consumer(cli, &client, c)?,
        Command::Kv(c) => js::kv(cli, &client, c)?,
        Command::Object(c) => js::object(cli, &client, c)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("micro: {e}");
            ExitCode::FAILURE
        }
    }
}
