//! `micro kv`: Key/Value buckets, their keys, values, histories and watches.

use std::time::Duration;

use bytes::Bytes;
use clap::Subcommand;
use nats_blocking::Client;
use nats_jetstream::blocking::Watched;
use nats_jetstream::kv::{self, Operation, WatchOptions};
use nats_jetstream::model::{KvConfig, KvStatus, StorageType};

use super::show::{entry_json, print_bucket, print_json, print_raw, size, span, utc};
use super::{duration, explain, About, Js, Storage};
use crate::table::print_plain;
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum KvCommand {
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
        /// Only changes from now on, no current values.
        #[arg(long, conflicts_with = "history")]
        updates_only: bool,
        /// Every revision still stored first, not only the latest.
        #[arg(long)]
        history: bool,
        /// Leave deletes and purges out.
        #[arg(long)]
        ignore_deletes: bool,
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

pub(crate) fn kv(cli: &Cli, client: &Client, command: &KvCommand) -> Result<(), String> {
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
            print_plain(&["Revision", "Op", "Created", "Length", "Value"], &rows);
        }
        KvCommand::Watch { bucket, key, count, updates_only, history, ignore_deletes } => {
            let store = js.bucket(bucket)?;
            let filter = key.as_deref().unwrap_or(">");
            kv::validate_filter(filter).map_err(|e| format!("bucket {bucket}: {e}"))?;
            let options = WatchOptions {
                updates_only: *updates_only,
                include_history: *history,
                ignore_deletes: *ignore_deletes,
                ..WatchOptions::keys([filter])
            };
            let watch = store.watch_with(&options).map_err(explain(About::Bucket(bucket)))?;
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
            print_plain(&["Bucket", "Values", "History", "TTL", "Size"], &rows);
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
