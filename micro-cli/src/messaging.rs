//! Core NATS messaging: `pub`, `sub`, `req` and `reply`.

use std::io::IsTerminal as _;
use std::time::Duration;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nats_blocking::{Client, Headers};

use crate::{failed, Cli};

/// More requests than this get a progress bar on a terminal (natscli's threshold).
const BAR_FROM: u64 = 20;

/// The messaging commands.
#[derive(Subcommand)]
pub(crate) enum Messaging {
    /// Publish a message (COUNT times); exits once the server has them all.
    Pub {
        subject: String,
        data: Option<String>,
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// A header, K:V (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
    /// Print messages on SUBJECT (exit after COUNT).
    Sub {
        subject: String,
        /// Join this queue group: each message goes to one member of the group.
        #[arg(long, value_name = "GROUP")]
        queue: Option<String>,
        #[arg(long)]
        count: Option<usize>,
    },
    /// Send a request (COUNT times, one after another) and print each reply; a progress bar on a terminal
    /// past 20 requests.
    Req {
        subject: String,
        data: Option<String>,
        /// A header, K:V (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
    },
    /// Answer requests on SUBJECT with DATA, or echo them back (exit after COUNT).
    Reply {
        subject: String,
        data: Option<String>,
        #[arg(long)]
        count: Option<usize>,
    },
}

/// Headers from `K:V` arguments; `None` when there are none.
pub(crate) fn headers(pairs: &[String]) -> Result<Option<Headers>, String> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut h = Headers::new();
    for pair in pairs {
        let (k, v) = pair.split_once(':').ok_or_else(|| format!("header {pair:?} is not K:V"))?;
        h.append(k.trim(), v.trim()).map_err(|e| format!("header {pair:?}: {e}"))?;
    }
    Ok(Some(h))
}

/// `[subject]`, the headers one a line, then the payload.
fn print_message(msg: &nats_blocking::Message) {
    say!("[{}]", msg.subject());
    if let Some(h) = &msg.headers() {
        for (k, v) in h.iter() {
            say!("{}: {}", String::from_utf8_lossy(k), String::from_utf8_lossy(v));
        }
    }
    say!("{}", String::from_utf8_lossy(msg.payload()));
}

/// Runs one messaging command.
pub(crate) fn run(cli: &Cli, client: &Client, command: &Messaging) -> Result<(), String> {
    match command {
        Messaging::Pub { subject, data, count, headers: h } => {
            let h = headers(h)?;
            let data = data.clone().unwrap_or_default();
            for _ in 0..*count {
                match &h {
                    Some(h) => client.publish_with_headers(subject, h, data.clone()),
                    None => client.publish(subject, data.clone()),
                }
                .map_err(failed)?;
            }
            client.flush().map_err(failed)?;
            say!("published {count} message(s) to {subject}");
        }
        Messaging::Sub { subject, queue, count } => {
            let sub = match queue {
                Some(q) => client.queue_subscribe(subject, q),
                None => client.subscribe(subject),
            }
            .map_err(failed)?;
            client.flush().map_err(failed)?;
            match queue {
                Some(q) => eprintln!("Subscribing on {subject} in queue group {q}"),
                None => eprintln!("Subscribing on {subject}"),
            }
            for msg in sub.take(count.unwrap_or(usize::MAX)) {
                print_message(&msg);
            }
        }
        Messaging::Req { subject, data, headers: h, count } => {
            request(client, subject, data.as_deref().unwrap_or_default(), h, *count, cli.timeout)?;
        }
        Messaging::Reply { subject, data, count } => {
            let sub = client.subscribe(subject).map_err(failed)?;
            client.flush().map_err(failed)?;
            for msg in sub.take(count.unwrap_or(usize::MAX)) {
                let answer = data.clone().map(bytes::Bytes::from).unwrap_or_else(|| msg.payload_bytes());
                msg.respond(answer).map_err(failed)?;
            }
            client.flush().map_err(failed)?;
        }
    }
    Ok(())
}

/// `req`: `count` requests one after another, each reply printed as it comes. The first failure (no
/// responders, a timeout) ends the run, saying which request it was when there are several.
fn request(
    client: &Client,
    subject: &str,
    data: &str,
    h: &[String],
    count: u64,
    timeout: Duration,
) -> Result<(), String> {
    let h = headers(h)?;
    let bar = progress_bar(count);
    for n in 1..=count {
        let reply = match &h {
            Some(h) => client.request_with_headers(subject, h, data),
            None => client.request_with_timeout(subject, data, timeout),
        };
        let reply = reply.map_err(|e| {
            bar.abandon();
            let why = match e {
                nats_blocking::Error::NoResponders => format!("no responders on {subject}"),
                e => e.to_string(),
            };
            if count > 1 {
                format!("request {n} of {count}: {why}")
            } else {
                why
            }
        })?;
        // The bar steps aside while the reply is printed (a no-op when it is hidden).
        bar.suspend(|| print_message(&reply));
        bar.inc(1);
    }
    bar.finish();
    Ok(())
}

/// A bar on stderr for more than [`BAR_FROM`] requests when both stdout and stderr are terminals (replies
/// printed to a terminal scroll above it); hidden otherwise, so piped output stays clean.
fn progress_bar(count: u64) -> ProgressBar {
    let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    if count <= BAR_FROM || !terminal {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(count), ProgressDrawTarget::stderr());
    let template = "[{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} requests";
    let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}
