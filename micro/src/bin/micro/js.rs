//! `micro stream`, `micro js`, `micro consumer` and `micro kv`: JetStream streams, publishing, pull consumers and
//! Key/Value buckets on the blocking binding, in natscli's words (and shorter).
//!
//! With `--json`, a command that makes one API call prints the server's reply as it came (`js pub`: the decoded
//! ack); listings print their items, `consumer next` the messages and `kv get`, `history` and `watch` the entries,
//! as JSON built here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Subcommand, ValueEnum};
use nats_blocking::{Client, HeaderBlock, HeaderView};
use nats_jetstream::blocking::{Context, Store, Watched};
use nats_jetstream::call::{Call, PublishOptions};
use nats_jetstream::error::{ErrorCode, JetStreamError};
use nats_jetstream::kv::{self, Entry, Operation};
use nats_jetstream::model::{
    AckPolicy, ConsumerConfig, ConsumerInfo, CreateAction, DeliverPolicy, KvConfig, KvStatus, MsgGetRequest, Pager,
    PurgeRequest, RetentionPolicy, StorageType, StreamConfig, StreamInfo,
};
use nats_jetstream::pull::FetchConfig;
use nats_jetstream::transport::Error;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{headers, parse_duration, print_table, Cli};

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

#[derive(Subcommand)]
pub(super) enum KvCommand {
    /// Create a Key/Value bucket.
    #[command(visible_alias = "create")]
    Add {
        /// The bucket's name.
        bucket: String,
        /// Values kept per key, 1 to 64.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=64))]
        history: i64,
        /// How long a value lives: 30s, 1h, 7d (default: forever).
        #[arg(long, value_parser = duration)]
        ttl: Option<Duration>,
        /// Where values are kept.
        #[arg(long, value_enum)]
        storage: Option<Storage>,
    },
    /// Set KEY to VALUE.
    Put {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Print KEY's value (fails when the key has none).
    Get {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// Print the value only.
        #[arg(long)]
        raw: bool,
    },
    /// Delete KEY (its history is kept).
    #[command(visible_alias = "rm-key")]
    Del {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// Show every revision of KEY still stored, deletes included.
    History {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// Print the latest entry of every key (or of KEY), then every change as it happens.
    Watch {
        /// The bucket.
        bucket: String,
        /// A key, or a filter with `*` and `>` (default: every key).
        key: Option<String>,
        /// Exit after COUNT entries.
        #[arg(long)]
        count: Option<usize>,
    },
    /// List buckets, or the keys of BUCKET.
    #[command(visible_alias = "list")]
    Ls {
        /// List this bucket's keys instead.
        bucket: Option<String>,
    },
    /// Show a bucket's settings and size.
    Info {
        /// The bucket.
        bucket: String,
    },
    /// Delete a bucket and everything in it.
    Rm {
        /// The bucket.
        bucket: String,
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
        }
    }
}

/// One line saying what went wrong, in the user's terms.
fn explain(about: About<'_>) -> impl Fn(Error) -> String + '_ {
    move |e| {
        let code = e.jetstream().and_then(JetStreamError::error_code);
        match (code, about) {
            (Some(ErrorCode::StreamNotFound), About::Bucket(b)) => return format!("bucket {b} not found"),
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

fn print_json(value: &impl Serialize) {
    say!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// A server reply, pretty-printed when it is JSON.
fn print_raw(raw: &[u8]) {
    match serde_json::from_slice::<Value>(raw) {
        Ok(value) => print_json(&value),
        Err(_) => say!("{}", String::from_utf8_lossy(raw)),
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
            print_table(&["Name", "Subjects", "Storage", "Messages", "Size", "Consumers", "Last Message"], &rows);
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

/// Streams of Key/Value buckets, object stores and MQTT, which `stream ls` leaves out without --all.
fn is_system_stream(name: &str) -> bool {
    ["KV_", "OBJ_", "$MQTT_"].iter().any(|p| name.starts_with(p))
}

fn subjects_of(config: &StreamConfig) -> String {
    if config.subjects.is_empty() {
        return "(none)".into();
    }
    config.subjects.join(", ")
}

fn limit(n: i64) -> String {
    if n < 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

fn print_stream(info: &StreamInfo) {
    let (c, s) = (&info.config, &info.state);
    let created = info.created.map(|t| format!(", created {}", utc(t))).unwrap_or_default();
    say!("Stream {}{created}", c.name);
    if !c.description.is_empty() {
        say!("  Description: {}", c.description);
    }
    say!("     Subjects: {}", subjects_of(c));
    say!("      Storage: {}, {} replica(s)", c.storage, c.num_replicas.max(1));
    say!("    Retention: {}, discard {}", c.retention, c.discard);
    say!("     Max Msgs: {}", limit(c.max_msgs));
    say!("    Max Bytes: {}", if c.max_bytes < 0 { "unlimited".into() } else { size(c.max_bytes as u64) });
    if c.max_msgs_per_subject > 0 {
        say!("  Per Subject: {}", c.max_msgs_per_subject);
    }
    say!("      Max Age: {}", if c.max_age.is_zero() { "unlimited".into() } else { span(c.max_age) });
    say!("  Dupe Window: {}", span(c.duplicate_window));
    say!("     Messages: {} ({})", s.messages, size(s.bytes));
    if s.last_seq > 0 {
        let last = s.last_time.map(|t| format!(", last {}", ago(t))).unwrap_or_default();
        say!("    Sequences: {} to {}{last}", s.first_seq, s.last_seq);
    }
    if s.num_deleted > 0 {
        say!("      Deleted: {}", s.num_deleted);
    }
    say!("    Consumers: {}", s.consumer_count);
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
            print_table(
                &["Name", "Filter", "Deliver", "Pending", "Ack Pending", "Redelivered", "Last Delivered"],
                &rows,
            );
        }
        ConsumerCommand::Add { stream, name, filter, deliver } => {
            let config = ConsumerConfig {
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

fn filter_of(config: &ConsumerConfig) -> String {
    if !config.filter_subjects.is_empty() {
        return config.filter_subjects.join(", ");
    }
    if config.filter_subject.is_empty() {
        return "(all)".into();
    }
    config.filter_subject.clone()
}

fn print_consumer(info: &ConsumerInfo) {
    let c = &info.config;
    let created = info.created.map(|t| format!(", created {}", utc(t))).unwrap_or_default();
    say!("Consumer {} on stream {}{created}", info.name, info.stream_name);
    if !c.description.is_empty() {
        say!("  Description: {}", c.description);
    }
    let kind = if c.deliver_subject.is_empty() { "pull" } else { "push" };
    say!("         Kind: {kind}{}", if c.durable_name.is_empty() { "" } else { ", durable" });
    say!("       Filter: {}", filter_of(c));
    say!("      Deliver: {}", c.deliver_policy);
    let wait = if c.ack_wait.is_zero() { String::new() } else { format!(", wait {}", span(c.ack_wait)) };
    let max = if c.max_ack_pending > 0 { format!(", max pending {}", c.max_ack_pending) } else { String::new() };
    say!("          Ack: {}{wait}{max}", c.ack_policy);
    say!("    Delivered: stream seq {}, consumer seq {}", info.delivered.stream_seq, info.delivered.consumer_seq);
    say!("    Ack Floor: stream seq {}, consumer seq {}", info.ack_floor.stream_seq, info.ack_floor.consumer_seq);
    say!("  Ack Pending: {}", info.num_ack_pending);
    say!("  Redelivered: {}", info.num_redelivered);
    say!("      Pending: {}", info.num_pending);
    if kind == "pull" {
        say!("      Waiting: {}", info.num_waiting);
    }
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

// ---- Key/Value ----

pub(super) fn kv(cli: &Cli, client: &Client, command: &KvCommand) -> Result<(), String> {
    let js = Js::new(cli, client);
    let api = js.ctx.api();
    match command {
        KvCommand::Add { bucket, history, ttl, storage } => {
            let config = KvConfig {
                history: *history,
                ttl: ttl.unwrap_or_default(),
                storage: storage.map(StorageType::from).unwrap_or_default(),
                ..KvConfig::new(bucket)
            };
            let stream = config.to_stream_config().map_err(|e| format!("bucket {bucket}: {e}"))?;
            let (info, raw) = js.raw(api.create_stream(&stream)).map_err(explain(About::Bucket(bucket)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            let status = KvStatus::from_stream_info(info).map_err(|e| format!("bucket {bucket}: {e}"))?;
            say!("Bucket {bucket} created\n");
            print_bucket(&status);
        }
        KvCommand::Put { bucket, key, value } => {
            js.bucket(bucket)?;
            kv::validate_put_key(key).map_err(|e| format!("bucket {bucket}: {e}"))?;
            let call = api.kv_write(bucket, key, None, value.clone());
            let (ack, raw) = js.raw(call).map_err(explain(About::Bucket(bucket)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            say!("{bucket} > {key} = {value} (revision {})", ack.seq);
        }
        KvCommand::Get { bucket, key, raw } => {
            let store = js.bucket(bucket)?;
            let entry = store.entry(key).map_err(explain(About::Bucket(bucket)))?;
            let entry = match entry {
                None => return Err(format!("key {key} not found in bucket {bucket}")),
                Some(e) if e.operation.is_marker() => {
                    let what = if e.operation == Operation::Purge { "purged" } else { "deleted" };
                    return Err(format!("key {key} not found in bucket {bucket} ({what} at revision {})", e.revision));
                }
                Some(e) => e,
            };
            if js.json {
                print_json(&entry_json(&entry));
            } else if *raw {
                say!("{}", String::from_utf8_lossy(&entry.value));
            } else {
                say!("{bucket} > {key} revision {} created {}\n", entry.revision, utc(entry.created));
                say!("{}", String::from_utf8_lossy(&entry.value));
            }
        }
        KvCommand::Del { bucket, key } => {
            js.bucket(bucket)?;
            kv::validate_key(key).map_err(|e| format!("bucket {bucket}: {e}"))?;
            let call = api.kv_write(bucket, key, Some(kv::delete_headers(None)), Bytes::new());
            let (ack, raw) = js.raw(call).map_err(explain(About::Bucket(bucket)))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            say!("Deleted {bucket} > {key} (revision {})", ack.seq);
        }
        KvCommand::History { bucket, key } => {
            let store = js.bucket(bucket)?;
            let history = store.history(key).map_err(explain(About::Bucket(bucket)))?;
            if history.is_empty() {
                return Err(format!("key {key} not found in bucket {bucket}: no history"));
            }
            if js.json {
                print_json(&history.iter().map(entry_json).collect::<Vec<_>>());
                return Ok(());
            }
            let rows: Vec<Vec<String>> = history
                .iter()
                .map(|e| {
                    vec![
                        e.revision.to_string(),
                        e.operation.as_str().into(),
                        utc(e.created),
                        e.value.len().to_string(),
                        String::from_utf8_lossy(&e.value).into_owned(),
                    ]
                })
                .collect();
            say!("History of {bucket} > {key}\n");
            print_table(&["Revision", "Op", "Created", "Length", "Value"], &rows);
        }
        KvCommand::Watch { bucket, key, count } => {
            let store = js.bucket(bucket)?;
            let filter = key.as_deref().unwrap_or(">");
            kv::validate_filter(filter).map_err(|e| format!("bucket {bucket}: {e}"))?;
            let watch = store.watch(filter).map_err(explain(About::Bucket(bucket)))?;
            let entries = watch.filter_map(|w| match w {
                Ok(Watched::Entry(entry)) => Some(Ok(entry)),
                Ok(Watched::InitialDone) => None,
                Err(e) => Some(Err(e)),
            });
            for entry in entries.take(count.unwrap_or(usize::MAX)) {
                let e = entry.map_err(explain(About::Bucket(bucket)))?;
                if js.json {
                    say!("{}", entry_json(&e));
                    continue;
                }
                let what = format!(
                    "[{}] {} {bucket} > {} (revision {})",
                    utc(e.created),
                    e.operation.as_str(),
                    e.key,
                    e.revision
                );
                if e.operation.is_marker() {
                    say!("{what}");
                } else {
                    say!("{what}: {}", String::from_utf8_lossy(&e.value));
                }
            }
        }
        KvCommand::Ls { bucket: None } => {
            let mut names = js.ctx.key_value_names().map_err(explain(About::JetStream))?;
            names.sort();
            if js.json {
                print_json(&names);
                return Ok(());
            }
            if names.is_empty() {
                say!("No Key/Value buckets");
                return Ok(());
            }
            let mut rows = Vec::new();
            for name in &names {
                let status = js.bucket(name)?.status().map_err(explain(About::Bucket(name)))?;
                let ttl = if status.ttl.is_zero() { "forever".into() } else { span(status.ttl) };
                rows.push(vec![
                    name.clone(),
                    status.values.to_string(),
                    status.history.to_string(),
                    ttl,
                    size(status.bytes),
                ]);
            }
            print_table(&["Bucket", "Values", "History", "TTL", "Size"], &rows);
        }
        KvCommand::Ls { bucket: Some(bucket) } => {
            let keys = js.bucket(bucket)?.keys().map_err(explain(About::Bucket(bucket)))?;
            if js.json {
                print_json(&keys);
            } else if keys.is_empty() {
                say!("No keys in bucket {bucket}");
            } else {
                for key in keys {
                    say!("{key}");
                }
            }
        }
        KvCommand::Info { bucket } => {
            kv::validate_bucket(bucket).map_err(|e| e.to_string())?;
            let (info, raw) =
                js.raw(api.stream_info(&kv::stream_name(bucket))).map_err(explain(About::Bucket(bucket)))?;
            let status = KvStatus::from_stream_info(info).map_err(|e| format!("bucket {bucket}: {e}"))?;
            if js.json {
                print_raw(&raw);
                return Ok(());
            }
            print_bucket(&status);
        }
        KvCommand::Rm { bucket } => {
            kv::validate_bucket(bucket).map_err(|e| e.to_string())?;
            // Bound first: `kv rm` deletes buckets, never a stream that merely has a KV_ name.
            js.bucket(bucket)?;
            let call = api.delete_stream(&kv::stream_name(bucket));
            let (deleted, raw) = js.raw(call).map_err(explain(About::Bucket(bucket)))?;
            if js.json {
                print_raw(&raw);
            } else if deleted {
                say!("Deleted bucket {bucket}");
            }
            if !deleted {
                return Err(format!("bucket {bucket}: the server did not delete it"));
            }
        }
    }
    Ok(())
}

fn print_bucket(status: &KvStatus) {
    let created = status.info.created.map(|t| format!(", created {}", utc(t))).unwrap_or_default();
    say!("Bucket {}{created}", status.bucket);
    say!("   History: {}", status.history);
    say!("       TTL: {}", if status.ttl.is_zero() { "forever".into() } else { span(status.ttl) });
    say!("   Storage: {}", status.info.config.storage);
    say!("    Values: {} ({})", status.values, size(status.bytes));
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "bucket": e.bucket,
        "key": e.key,
        "revision": e.revision,
        "operation": e.operation.as_str(),
        "created": utc(e.created),
        "value": String::from_utf8_lossy(&e.value),
    })
}

// ---- formatting ----

fn print_headers(headers: Option<HeaderView<'_>>) {
    for (k, v) in headers.into_iter().flat_map(HeaderView::iter) {
        say!("{}: {}", String::from_utf8_lossy(k), String::from_utf8_lossy(v));
    }
}

/// Headers as a JSON object; a repeated header's values joined with ", ".
fn headers_json(headers: Option<HeaderView<'_>>) -> Value {
    let mut map = Map::new();
    for (k, v) in headers.into_iter().flat_map(HeaderView::iter) {
        let (k, v) = (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned());
        let joined = match map.get(&k).and_then(Value::as_str) {
            Some(before) => format!("{before}, {v}"),
            None => v,
        };
        map.insert(k, Value::String(joined));
    }
    Value::Object(map)
}

/// A time as RFC 3339 in UTC, to the second.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86400, secs % 86400);
    // Days since 1970-01-01 to a civil date, in 400-year eras of 146097 days starting on a 1 March.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// How long ago `t` was.
fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{} ago", span(d)),
        Err(_) => "just now".into(),
    }
}

/// A duration the way flags take it: `500ms`, `2m`, `1h30m`, `7d`.
fn span(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, name) in [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    out
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn civil_dates_and_sizes() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(1_735_689_599)), "2024-12-31T23:59:59Z");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
    }
}
