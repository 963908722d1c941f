//! `micro stream`, `micro js`, `micro consumer` and `micro kv`: JetStream streams, publishing, pull consumers and
//! Key/Value buckets on the blocking binding, in natscli's words (and shorter).
//!
//! With `--json`, a command that makes one API call prints the server's reply as it came (`js pub`: the decoded
//! ack); listings print their items, `consumer next` the messages and `kv get`, `history` and `watch` the entries,
//! as JSON built here.

use std::time::Duration;

use bytes::Bytes;
use clap::{Subcommand, ValueEnum};
use nats_blocking::{Client, HeaderBlock};
use nats_jetstream::blocking::{Context, Store};
use nats_jetstream::call::{Call, PublishOptions};
use nats_jetstream::error::{ErrorCode, JetStreamError};
use nats_jetstream::model::{
    AckPolicy, ConsumerConfig, ConsumerInfo, CreateAction, DeliverPolicy, MsgGetRequest, Pager, PurgeRequest,
    RetentionPolicy, StorageType, StreamConfig,
};
use nats_jetstream::pull::FetchConfig;
use nats_jetstream::Error;
use serde_json::json;

use self::show::{
    ago, filter_of, headers_json, is_system_stream, print_consumer, print_headers, print_json, print_raw, print_stream,
    size, subjects_of, utc,
};
use super::{parse_duration, Cli};
use crate::messaging::headers;
use crate::table::print_plain;

mod kv;
mod object;
mod push;
mod show;

pub(super) use self::kv::{kv, KvCommand};
pub(super) use self::object::{object, ObjectCommand};

#[derive(Subcommand)]
pub(super) enum StreamCommand {
    /// List streams (those behind Key/Value buckets and object stores only with --all).
    #[command(visible_alias = "list")]
    Ls {
        /// Also list the streams behind Key/Value buckets and object stores.
        #[arg(long)]
        all: bool,
    },
    /// Create a stream (succeeds unchanged when an identical one exists).
    #[command(visible_alias = "create")]
    Add {
        /// The stream's name.
        name: String,
        /// Subjects to store, comma-separated (wildcards allowed); default: the stream's name.
        #[arg(long, value_delimiter = ',')]
        subjects: Vec<String>,
        /// Where messages are kept.
        #[arg(long, value_enum)]
        storage: Option<Storage>,
        /// When messages are removed.
        #[arg(long, value_enum)]
        retention: Option<Retention>,
        /// Most messages kept (-1: unlimited, the default).
        #[arg(long, allow_negative_numbers = true)]
        max_msgs: Option<i64>,
        /// Oldest message kept: 30s, 1h, 7d (default: unlimited).
        #[arg(long, value_parser = duration)]
        max_age: Option<Duration>,
        /// Window of Nats-Msg-Id de-duplication (default: 2m).
        #[arg(long, value_parser = duration)]
        dupe_window: Option<Duration>,
    },
    /// Show a stream's configuration and state.
    Info {
        /// The stream.
        name: String,
    },
    /// Delete a stream and every message in it.
    #[command(visible_alias = "delete")]
    Rm {
        /// The stream.
        name: String,
    },
    /// Remove messages: all of them, or those on --subject, keeping the newest --keep.
    Purge {
        /// The stream.
        name: String,
        /// Only messages on this subject (wildcards allowed).
        #[arg(long)]
        subject: Option<String>,
        /// Keep the newest N messages.
        #[arg(long)]
        keep: Option<u64>,
    },
    /// Show the message stored at sequence SEQ.
    Get {
        /// The stream.
        name: String,
        /// The message's sequence.
        seq: u64,
    },
}

#[derive(Subcommand)]
pub(super) enum JsCommand {
    /// Publish a message to a stream's subject and print the stream's acknowledgement.
    Pub {
        /// A subject some stream stores.
        subject: String,
        /// The payload.
        data: Option<String>,
        /// Nats-Msg-Id: a repeat within the stream's duplicate window is not stored again.
        #[arg(long)]
        msg_id: Option<String>,
        /// A header, K:V (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
}

#[derive(Subcommand)]
pub(super) enum ConsumerCommand {
    /// List a stream's consumers.
    #[command(visible_alias = "list")]
    Ls {
        /// The stream.
        stream: String,
    },
    /// Create a durable pull consumer with explicit acks.
    #[command(visible_alias = "create")]
    Add {
        /// The stream.
        stream: String,
        /// The consumer's name.
        name: String,
        /// Only messages on this subject.
        #[arg(long)]
        filter: Option<String>,
        /// Where to start: every message, only new ones, or the last one.
        #[arg(long, value_enum, default_value = "all")]
        deliver: Deliver,
        #[command(flatten)]
        push: push::PushArgs,
    },
    /// Show a consumer's configuration and state.
    Info {
        /// The stream.
        stream: String,
        /// The consumer.
        name: String,
    },
    /// Delete a consumer.
    #[command(visible_alias = "delete")]
    Rm {
        /// The stream.
        stream: String,
        /// The consumer.
        name: String,
    },
    /// Pull up to COUNT messages, print each and acknowledge it.
    Next {
        /// The stream.
        stream: String,
        /// The consumer (a pull consumer).
        name: String,
        /// Most messages to pull.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// How long to wait for messages that are not there yet.
        #[arg(long, default_value = "1s", value_parser = duration)]
        wait: Duration,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum Storage {
    File,
    Memory,
}

impl From<Storage> for StorageType {
    fn from(s: Storage) -> Self {
        match s {
            Storage::File => StorageType::File,
            Storage::Memory => StorageType::Memory,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum Retention {
    Limits,
    Interest,
    Workqueue,
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum Deliver {
    All,
    New,
    Last,
}

/// Durations of flags: `500ms`, `5s`, `1m`, `2h`, `1d`.
fn duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("not a duration: {s:?} (try 500ms, 5s, 1m, 2h, 1d)");
    let long = [('h', 3600.0), ('d', 86400.0)];
    let Some((number, unit)) = long.iter().find_map(|(c, unit)| s.strip_suffix(*c).map(|n| (n, unit))) else {
        return parse_duration(s).map_err(|_| bad());
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(n * unit).map_err(|_| bad())
}

/// What a call was about, to name it when it fails.
#[derive(Clone, Copy)]
enum About<'a> {
    JetStream,
    Stream(&'a str),
    Consumer(&'a str, &'a str),
    Message(&'a str, u64),
    Subject(&'a str),
    Bucket(&'a str),
    Store(&'a str),
}

impl std::fmt::Display for About<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            About::JetStream => f.write_str("JetStream"),
            About::Stream(s) => write!(f, "stream {s}"),
            About::Consumer(s, c) => write!(f, "consumer {c} of stream {s}"),
            About::Message(s, seq) => write!(f, "message {seq} of stream {s}"),
            About::Subject(s) => write!(f, "publish to {s}"),
            About::Bucket(b) => write!(f, "bucket {b}"),
            About::Store(b) => write!(f, "object store {b}"),
        }
    }
}

/// One line saying what went wrong, in the user's terms.
fn explain(about: About<'_>) -> impl Fn(Error) -> String + '_ {
    move |e| {
        let code = e.jetstream().and_then(JetStreamError::error_code);
        match (code, about) {
            (Some(ErrorCode::StreamNotFound), About::Bucket(b)) => return format!("bucket {b} not found"),
            (Some(ErrorCode::StreamNotFound), About::Store(b)) => return format!("object store {b} not found"),
            (Some(ErrorCode::StreamNotFound), About::Stream(s) | About::Consumer(s, _) | About::Message(s, _)) => {
                return format!("stream {s} not found")
            }
            (Some(ErrorCode::ConsumerNotFound), About::Consumer(s, c)) => {
                return format!("consumer {c} not found on stream {s}")
            }
            (Some(ErrorCode::NoMessageFound), About::Message(s, seq)) => {
                return format!("no message {seq} in stream {s}: not found")
            }
            (Some(ErrorCode::StreamNameInUse), About::Stream(_) | About::Bucket(_)) => {
                return format!("{about} already exists with a different configuration")
            }
            _ => {}
        }
        match e.jetstream() {
            Some(JetStreamError::NoResponders) => match about {
                About::Subject(s) => format!("no stream stores {s} (no responders)"),
                _ => format!("{about}: JetStream is not available (no responders; is JetStream enabled?)"),
            },
            Some(JetStreamError::Api(api)) => match api.err_code {
                Some(n) => format!("{about}: {} (error {n})", api.description),
                None => format!("{about}: {} ({})", api.description, api.code),
            },
            _ if e.is_timeout() => format!("{about}: no reply in time (timeout)"),
            _ => format!("{about}: {e}"),
        }
    }
}

/// A JetStream context and how to print.
struct Js {
    ctx: Context<Client>,
    timeout: Duration,
    json: bool,
}

impl Js {
    fn new(cli: &Cli, client: &Client) -> Self {
        Js { ctx: Context::new(client.clone()).timeout(cli.timeout), timeout: cli.timeout, json: cli.json }
    }

    /// Sends one call: its decoded reply (or typed error), and the reply's body exactly as it came.
    fn raw<R>(&self, call: Result<Call<R>, JetStreamError>) -> Result<(R, Bytes), Error> {
        let call = call?;
        let client = self.ctx.client();
        let reply = client.send_request(call.subject(), call.headers(), call.payload().clone(), self.timeout)?;
        let value = call.decode(reply.headers(), reply.payload_bytes())?;
        Ok((value, reply.payload_bytes()))
    }

    /// Binds to an existing bucket.
    fn bucket(&self, bucket: &str) -> Result<Store<Client>, String> {
        self.ctx.key_value(bucket).map_err(explain(About::Bucket(bucket)))
    }
}

// ---- streams ----

pub(super) fn stream(cli: &Cli, client: &Client, command: &StreamCommand) -> Result<(), String> {
    let js = Js::new(cli, client);
    let api = js.ctx.api();
    match command {
        StreamCommand::Ls { all } => {
            let mut streams = js.ctx.streams().map_err(explain(About::JetStream))?;
            streams.retain(|s| *all || !is_system_stream(&s.config.name));
            streams.sort_by(|a, b| a.config.name.cmp(&b.config.name));
            if js.json {
                print_json(&streams);
                return Ok(());
            }
            if streams.is_empty() {
                say!("No streams defined");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = streams
                .iter()
                .map(|s| {
                    vec![
                        s.config.name.clone(),
                        subjects_of(&s.config),
                        s.config.storage.to_string(),
                        s.state.messages.to_string(),
                        size(s.state.bytes),
                        s.state.consumer_count.to_string(),
                        s.state.last_time.filter(|_| s.state.last_seq > 0).map_or_else(|| "never".into(), ago),
                    ]
                })
                .collect();
            print_plain(&["Name", "Subjects", "Storage", "Messages", "Size", "Consumers", "Last Message"], &rows);
        }
        StreamCommand::Add { name, subjects, storage, retention, max_msgs, max_age, dupe_window } => {
            let config = StreamConfig {
                subjects: subjects.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
                storage: storage.map(StorageType::from).unwrap_or_default(),
                retention: match retention {
                    None | Some(Retention::Limits) => RetentionPolicy::Limits,
                    Some(Retention::Interest) => RetentionPolicy::Interest,
                    Some(Retention::Workqueue) => RetentionPolicy::WorkQueue,
                },
                max_msgs: max_msgs.unwrap_or_default(),
                max_age: max_age.unwrap_or_default(),
                duplicate_window: dupe_window.unwrap_or_default(),
                ..StreamConfig::new(name)
            };
            let (info, raw) = js.raw(api.create_stream(&config)).map_err(explain(About::Stream(name)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            say!("Stream {name} created\n");
            print_stream(&info);
        }
        StreamCommand::Info { name } => {
            let (info, raw) = js.raw(api.stream_info(name)).map_err(explain(About::Stream(name)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            print_stream(&info);
        }
        StreamCommand::Rm { name } => {
            let (deleted, raw) = js.raw(api.delete_stream(name)).map_err(explain(About::Stream(name)))?;
            if js.json {
                print_raw(&raw);
            } else if deleted {
                say!("Deleted stream {name}");
            }
            if !deleted {
                return Err(format!("stream {name}: the server did not delete it"));
            }
        }
        StreamCommand::Purge { name, subject, keep } => {
            let request =
                PurgeRequest { filter: subject.clone().unwrap_or_default(), keep: keep.unwrap_or_default(), seq: 0 };
            let (purged, raw) = js.raw(api.purge_stream(name, &request)).map_err(explain(About::Stream(name)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            let on = subject.as_ref().map(|s| format!(" on {s}")).unwrap_or_default();
            let kept = keep.map(|k| format!(", kept the newest {k}")).unwrap_or_default();
            say!("Purged {} message(s){on} from stream {name}{kept}", purged.purged);
        }
        StreamCommand::Get { name, seq } => {
            let call = api.get_message(name, &MsgGetRequest::seq(*seq));
            let (msg, raw) = js.raw(call).map_err(explain(About::Message(name, *seq)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            say!("[{}] stream {name} seq {}, stored {}", msg.subject, msg.seq, utc(msg.time));
            print_headers(msg.headers.as_ref().map(HeaderBlock::view));
            say!("{}", String::from_utf8_lossy(&msg.data));
        }
    }
    Ok(())
}

// ---- publish ----

pub(super) fn js(cli: &Cli, client: &Client, command: &JsCommand) -> Result<(), String> {
    let js = Js::new(cli, client);
    match command {
        JsCommand::Pub { subject, data, msg_id, headers: h } => {
            let mut options = PublishOptions::new();
            if let Some(id) = msg_id {
                options = options.msg_id(id);
            }
            if let Some(h) = headers(h)? {
                options = options.headers(h);
            }
            let payload = data.clone().unwrap_or_default();
            let ack = js.ctx.publish_with(subject, payload, &options).map_err(explain(About::Subject(subject)))?;
            if js.json {
                print_json(&ack);
                return Ok(());
            }
            let duplicate = if ack.duplicate { " (duplicate: already stored, not stored again)" } else { "" };
            say!("Published to {subject}: stream {} seq {}{duplicate}", ack.stream, ack.seq);
        }
    }
    Ok(())
}

// ---- consumers ----

pub(super) fn consumer(cli: &Cli, client: &Client, command: &ConsumerCommand) -> Result<(), String> {
    let js = Js::new(cli, client);
    let api = js.ctx.api();
    match command {
        ConsumerCommand::Ls { stream } => {
            let about = About::Stream(stream);
            let mut pager = Pager::new();
            let mut consumers = Vec::new();
            while let Some(offset) = pager.next_offset() {
                let page = api.consumer_list(stream, offset).map_err(|e| explain(about)(e.into()))?;
                consumers.extend(pager.accept(js.ctx.call(&page).map_err(explain(about))?));
            }
            consumers.sort_by(|a: &ConsumerInfo, b| a.name.cmp(&b.name));
            if js.json {
                print_json(&consumers);
                return Ok(());
            }
            if consumers.is_empty() {
                say!("No consumers on stream {stream}");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = consumers
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        filter_of(&c.config),
                        c.config.deliver_policy.to_string(),
                        c.num_pending.to_string(),
                        c.num_ack_pending.to_string(),
                        c.num_redelivered.to_string(),
                        c.delivered.stream_seq.to_string(),
                    ]
                })
                .collect();
            print_plain(
                &["Name", "Filter", "Deliver", "Pending", "Ack Pending", "Redelivered", "Last Delivered"],
                &rows,
            );
        }
        ConsumerCommand::Add { stream, name, filter, deliver, push } => {
            let mut config = ConsumerConfig {
                durable_name: name.clone(),
                ack_policy: AckPolicy::Explicit,
                filter_subject: filter.clone().unwrap_or_default(),
                deliver_policy: match deliver {
                    Deliver::All => DeliverPolicy::All,
                    Deliver::New => DeliverPolicy::New,
                    Deliver::Last => DeliverPolicy::Last,
                },
                ..ConsumerConfig::named(name)
            };
            push.apply(&mut config);
            let call = api.create_consumer(stream, &config, CreateAction::Create);
            let (info, raw) = js.raw(call).map_err(explain(About::Consumer(stream, name)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            say!("Consumer {name} created on stream {stream}\n");
            print_consumer(&info);
        }
        ConsumerCommand::Info { stream, name } => {
            let (info, raw) =
                js.raw(api.consumer_info(stream, name)).map_err(explain(About::Consumer(stream, name)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            print_consumer(&info);
        }
        ConsumerCommand::Rm { stream, name } => {
            let (deleted, raw) =
                js.raw(api.delete_consumer(stream, name)).map_err(explain(About::Consumer(stream, name)))?;
            if js.json {
                print_raw(&raw);
            } else if deleted {
                say!("Deleted consumer {name} of stream {stream}");
            }
            if !deleted {
                return Err(format!("consumer {name} of stream {stream}: the server did not delete it"));
            }
        }
        ConsumerCommand::Next { stream, name, count, wait } => next(&js, stream, name, *count, *wait)?,
    }
    Ok(())
}

/// `consumer next`: one pull of up to `count` messages; each is printed, then acknowledged (and the ack
/// confirmed by the server) unless the consumer takes no acks.
fn next(js: &Js, stream: &str, name: &str, count: u64, wait: Duration) -> Result<(), String> {
    let about = About::Consumer(stream, name);
    let handle = js.ctx.pull_consumer(stream, name);
    // Asked first, so that a missing stream or consumer is named rather than a pull that nobody answers.
    let info = handle.info().map_err(explain(about))?;
    if !info.config.deliver_subject.is_empty() {
        return Err(format!("{about}: a push consumer; next needs a pull consumer"));
    }
    let acks = info.config.ack_policy != AckPolicy::None;
    let messages = handle.fetch(FetchConfig::batch(count).with_expires(wait)).map_err(explain(about))?;
    let (mut shown, mut n) = (Vec::new(), 0);
    for mut msg in messages {
        let meta = msg.metadata().map_err(|e| format!("{about}: {e}"))?;
        if js.json {
            let h = msg.message.headers();
            shown.push(json!({
                "subject": msg.message.subject().to_string(),
                "stream": meta.stream,
                "consumer": meta.consumer,
                "stream_seq": meta.stream_sequence,
                "consumer_seq": meta.consumer_sequence,
                "delivered": meta.delivered,
                "pending": meta.pending,
                "time": utc(meta.timestamp),
                "headers": headers_json(h),
                "data": String::from_utf8_lossy(msg.payload()),
            }));
        } else {
            say!(
                "[{}] stream seq {}, consumer seq {}, delivered {}x, {} pending",
                msg.message.subject(),
                meta.stream_sequence,
                meta.consumer_sequence,
                meta.delivered,
                meta.pending
            );
            print_headers(msg.message.headers());
            say!("{}", String::from_utf8_lossy(msg.payload()));
        }
        if acks {
            msg.double_ack(js.timeout)
                .map_err(|e| format!("{about}: acking stream seq {}: {e}", meta.stream_sequence))?;
        }
        n += 1;
    }
    if js.json {
        print_json(&shown);
    } else if n == 0 {
        say!("No messages available on consumer {name} of stream {stream}");
    } else if acks {
        say!("Acknowledged {n} message(s)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::show::span;
    use super::*;

    #[test]
    fn durations_and_their_display() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(duration("5x").is_err() && duration("h").is_err() && duration("-1d").is_err());
        assert_eq!(span(Duration::from_secs(5400)), "1h30m");
        assert_eq!(span(Duration::from_millis(500)), "500ms");
        assert_eq!(span(Duration::from_secs(86400 * 7)), "7d");
    }
}
