//! `micro object`: object stores and their objects, in natscli's words (`nats object
//! add|put|get|ls|info|rm|watch|seal`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use nats_blocking::Client;
use nats_jetstream::blocking::{ObjectStore, Watched};
use nats_jetstream::model::{ObjectInfo, ObjectMeta, ObjectStoreConfig, StorageType};

use super::show::{print_json, size, span, utc};
use super::{duration, explain, About, Js, Storage};
use crate::table::print_plain;
use crate::Cli;

#[derive(Subcommand)]
pub(crate) enum ObjectCommand {
    /// Create an object store.
    #[command(visible_alias = "create")]
    Add {
        /// The store's name.
        bucket: String,
        /// How long an object lives: 30s, 1h, 7d (default: forever).
        #[arg(long, value_parser = duration)]
        ttl: Option<Duration>,
        /// Where objects are kept.
        #[arg(long, value_enum)]
        storage: Option<Storage>,
    },
    /// Store FILE (or standard input with `-`) as an object, streamed in chunks.
    Put {
        /// The store.
        bucket: String,
        /// The file to store; `-` reads standard input.
        file: PathBuf,
        /// The object's name (default: the file's name).
        #[arg(long)]
        name: Option<String>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Fetch an object into a file (default: its name, in the current directory), its digest checked.
    Get {
        /// The store.
        bucket: String,
        /// The object.
        name: String,
        /// Where to write it; `-` writes to standard output.
        #[arg(long, short = 'O')]
        output: Option<PathBuf>,
    },
    /// List the stores, or the objects in BUCKET.
    #[command(visible_alias = "list")]
    Ls {
        /// List this store's objects instead.
        bucket: Option<String>,
    },
    /// Show a store's settings, or an object's info.
    Info {
        /// The store.
        bucket: String,
        /// The object.
        name: Option<String>,
    },
    /// Delete an object, or (without NAME) the whole store.
    Rm {
        /// The store.
        bucket: String,
        /// The object.
        name: Option<String>,
    },
    /// Print the latest of every object, then every change as it happens (deletes included).
    Watch {
        /// The store.
        bucket: String,
        /// Exit after COUNT changes (the initial objects included).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Seal a store: no more changes, for good.
    Seal {
        /// The store.
        bucket: String,
    },
}

pub(crate) fn object(cli: &Cli, client: &Client, command: &ObjectCommand) -> Result<(), String> {
    let js = Js::new(cli, client);
    let store = |bucket: &str| js.ctx.object_store(bucket).map_err(explain(About::Store(bucket)));
    match command {
        ObjectCommand::Add { bucket, ttl, storage } => {
            let config = ObjectStoreConfig {
                ttl: ttl.unwrap_or_default(),
                storage: storage.map(StorageType::from).unwrap_or_default(),
                ..ObjectStoreConfig::new(bucket)
            };
            let store = js.ctx.create_object_store(&config).map_err(explain(About::Store(bucket)))?;
            show_store(&js, &store)?;
        }
        ObjectCommand::Put { bucket, file, name, description } => {
            let store = store(bucket)?;
            let name = match name {
                Some(n) => n.clone(),
                None if file == Path::new("-") => return Err("reading standard input: give the object --name".into()),
                None => file.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or("the file has no name")?,
            };
            let meta = ObjectMeta { description: description.clone().unwrap_or_default(), ..ObjectMeta::new(&name) };
            let put = if file == Path::new("-") {
                store.put(meta, io::stdin().lock())
            } else {
                store.put(meta, File::open(file).map_err(|e| format!("{}: {e}", file.display()))?)
            };
            let info = put.map_err(explain(About::Store(bucket)))?;
            show_object(&js, &info);
        }
        ObjectCommand::Get { bucket, name, output } => {
            let mut reader = store(bucket)?.get(name).map_err(explain(About::Store(bucket)))?;
            let size = reader.info().size;
            let target = output.clone().unwrap_or_else(|| PathBuf::from(name.rsplit('/').next().unwrap_or(name)));
            let copied = if target == Path::new("-") {
                io::copy(&mut reader, &mut io::stdout().lock())
            } else {
                let mut out = BufWriter::new(File::create(&target).map_err(|e| format!("{}: {e}", target.display()))?);
                io::copy(&mut reader, &mut out).and_then(|n| out.flush().map(|()| n))
            };
            copied.map_err(|e| format!("object {name} in store {bucket}: {e}"))?;
            if target != Path::new("-") && !js.json {
                say!("Wrote {name} ({}) to {}, its SHA-256 digest checked", size_text(size), target.display());
            }
        }
        ObjectCommand::Ls { bucket: None } => {
            let mut names: Vec<String> = js
                .ctx
                .stream_names(Some("$O.*.M.>"))
                .map_err(explain(About::JetStream))?
                .into_iter()
                .filter_map(|s| s.strip_prefix(nats_jetstream::object::STREAM_PREFIX).map(str::to_owned))
                .collect();
            names.sort();
            if js.json {
                print_json(&names);
            } else if names.is_empty() {
                say!("No object stores");
            } else {
                let mut rows = Vec::new();
                for name in &names {
                    let status = store(name)?.status().map_err(explain(About::Store(name)))?;
                    let ttl = if status.ttl.is_zero() { "forever".into() } else { span(status.ttl) };
                    rows.push(vec![name.clone(), status.description, ttl, size(status.size)]);
                }
                print_plain(&["Store", "Description", "TTL", "Size"], &rows);
            }
        }
        ObjectCommand::Ls { bucket: Some(bucket) } => {
            let objects = store(bucket)?.list().map_err(explain(About::Store(bucket)))?;
            if js.json {
                print_json(&objects.iter().map(object_json).collect::<Vec<_>>());
            } else if objects.is_empty() {
                say!("No objects in store {bucket}");
            } else {
                let rows: Vec<Vec<String>> = objects
                    .iter()
                    .map(|o| vec![o.name().to_owned(), size(o.size), o.modified.map(utc).unwrap_or_default()])
                    .collect();
                print_plain(&["Name", "Size", "Time"], &rows);
            }
        }
        ObjectCommand::Info { bucket, name: None } => show_store(&js, &store(bucket)?)?,
        ObjectCommand::Info { bucket, name: Some(name) } => {
            let info = store(bucket)?.info(name).map_err(explain(About::Store(bucket)))?;
            show_object(&js, &info);
        }
        ObjectCommand::Rm { bucket, name: Some(name) } => {
            store(bucket)?.delete(name).map_err(explain(About::Store(bucket)))?;
            if !js.json {
                say!("Deleted {name} from store {bucket}");
            }
        }
        ObjectCommand::Watch { bucket, count } => {
            let watch = store(bucket)?.watch().map_err(explain(About::Store(bucket)))?;
            let objects = watch.filter_map(|w| match w {
                Ok(Watched::Entry(info)) => Some(Ok(info)),
                Ok(Watched::InitialDone) => None,
                Err(e) => Some(Err(e)),
            });
            for info in objects.take(count.unwrap_or(usize::MAX)) {
                let info = info.map_err(explain(About::Store(bucket)))?;
                if js.json {
                    say!("{}", object_json(&info));
                    continue;
                }
                let when = info.modified.map(utc).unwrap_or_default();
                if info.deleted {
                    say!("[{when}] DEL {bucket} > {}", info.name());
                } else {
                    say!("[{when}] PUT {bucket} > {} ({})", info.name(), size_text(info.size));
                }
            }
        }
        ObjectCommand::Seal { bucket } => {
            let status = store(bucket)?.seal().map_err(explain(About::Store(bucket)))?;
            if js.json {
                print_json(&status.info);
            } else {
                say!("Sealed object store {bucket}");
            }
        }
        ObjectCommand::Rm { bucket, name: None } => {
            store(bucket)?;
            let deleted = js.ctx.delete_object_store(bucket).map_err(explain(About::Store(bucket)))?;
            if !deleted {
                return Err(format!("object store {bucket}: the server did not delete it"));
            }
            if !js.json {
                say!("Deleted object store {bucket}");
            }
        }
    }
    Ok(())
}

/// `1.2 MiB (1234567 bytes)`.
fn size_text(bytes: u64) -> String {
    format!("{} ({bytes} bytes)", size(bytes))
}

fn object_json(info: &ObjectInfo) -> serde_json::Value {
    let mut value = serde_json::to_value(info).unwrap_or_default();
    if let (Some(map), Some(t)) = (value.as_object_mut(), info.modified) {
        map.insert("mtime".into(), utc(t).into());
    }
    value
}

fn show_object(js: &Js, info: &ObjectInfo) {
    if js.json {
        print_json(&object_json(info));
        return;
    }
    say!("Object information for {} > {}\n", info.bucket, info.name());
    let mut rows = vec![
        ("Size", size_text(info.size)),
        ("Chunks", info.chunks.to_string()),
        ("Digest", info.digest.clone()),
        ("Unique ID", info.nuid.clone()),
    ];
    if !info.meta.description.is_empty() {
        rows.insert(0, ("Description", info.meta.description.clone()));
    }
    if let Some(t) = info.modified {
        rows.push(("Modified", utc(t)));
    }
    for (label, value) in rows {
        say!("{label:>15}: {value}");
    }
}

fn show_store(js: &Js, store: &ObjectStore<Client>) -> Result<(), String> {
    let status = store.status().map_err(explain(About::Store(store.bucket())))?;
    if js.json {
        print_json(&status.info);
        return Ok(());
    }
    say!("Information for object store {}\n", status.bucket);
    let ttl = if status.ttl.is_zero() { "forever".into() } else { span(status.ttl) };
    let storage = format!("{:?}", status.storage).to_lowercase();
    for (label, value) in [
        ("Description", status.description.clone()),
        ("TTL", ttl),
        ("Sealed", status.sealed.to_string()),
        ("Size", size(status.size)),
        ("Storage", storage),
        ("Replicas", status.replicas.to_string()),
    ] {
        say!("{label:>15}: {value}");
    }
    Ok(())
}
