//! How `micro stream`, `micro js`, `micro consumer` and `micro kv` print: streams, consumers, buckets, entries,
//! headers, times, durations and sizes, in words or as JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nats_blocking::HeaderView;
use nats_jetstream::kv::Entry;
use nats_jetstream::model::{ConsumerConfig, ConsumerInfo, KvStatus, StreamConfig, StreamInfo};
use serde::Serialize;
use serde_json::{json, Map, Value};

pub(super) fn print_json(value: &impl Serialize) {
    say!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// A server reply, pretty-printed when it is JSON.
pub(super) fn print_raw(raw: &[u8]) {
    match serde_json::from_slice::<Value>(raw) {
        Ok(value) => print_json(&value),
        Err(_) => say!("{}", String::from_utf8_lossy(raw)),
    }
}

// ---- streams ----

/// Streams of Key/Value buckets, object stores and MQTT, which `stream ls` leaves out without --all.
pub(super) fn is_system_stream(name: &str) -> bool {
    ["KV_", "OBJ_", "$MQTT_"].iter().any(|p| name.starts_with(p))
}

pub(super) fn subjects_of(config: &StreamConfig) -> String {
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

pub(super) fn print_stream(info: &StreamInfo) {
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

// ---- consumers ----

pub(super) fn filter_of(config: &ConsumerConfig) -> String {
    if !config.filter_subjects.is_empty() {
        return config.filter_subjects.join(", ");
    }
    if config.filter_subject.is_empty() {
        return "(all)".into();
    }
    config.filter_subject.clone()
}

pub(super) fn print_consumer(info: &ConsumerInfo) {
    let c = &info.config;
    let created = info.created.map(|t| format!(", created {}", utc(t))).unwrap_or_default();
    say!("Consumer {} on stream {}{created}", info.name, info.stream_name);
    if !c.description.is_empty() {
        say!("  Description: {}", c.description);
    }
    let kind = if c.deliver_subject.is_empty() { "pull" } else { "push" };
    say!("         Kind: {kind}{}", if c.durable_name.is_empty() { "" } else { ", durable" });
    if kind == "push" {
        let group = if c.deliver_group.is_empty() { String::new() } else { format!(", group {}", c.deliver_group) };
        say!("   Deliver To: {}{group}", c.deliver_subject);
        if !c.idle_heartbeat.is_zero() {
            let fc = if c.flow_control { ", flow control" } else { "" };
            say!("    Heartbeat: {}{fc}", span(c.idle_heartbeat));
        }
    }
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

// ---- Key/Value ----

pub(super) fn print_bucket(status: &KvStatus) {
    let created = status.info.created.map(|t| format!(", created {}", utc(t))).unwrap_or_default();
    say!("Bucket {}{created}", status.bucket);
    say!("   History: {}", status.history);
    say!("       TTL: {}", if status.ttl.is_zero() { "forever".into() } else { span(status.ttl) });
    say!("   Storage: {}", status.info.config.storage);
    say!("    Values: {} ({})", status.values, size(status.bytes));
}

pub(super) fn entry_json(e: &Entry) -> Value {
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

pub(super) fn print_headers(headers: Option<HeaderView<'_>>) {
    for (k, v) in headers.into_iter().flat_map(HeaderView::iter) {
        say!("{}: {}", String::from_utf8_lossy(k), String::from_utf8_lossy(v));
    }
}

/// Headers as a JSON object; a repeated header's values joined with ", ".
pub(super) fn headers_json(headers: Option<HeaderView<'_>>) -> Value {
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
pub(super) fn utc(t: SystemTime) -> String {
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
pub(super) fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{} ago", span(d)),
        Err(_) => "just now".into(),
    }
}

/// A duration the way flags take it: `500ms`, `2m`, `1h30m`, `7d`.
pub(super) fn span(d: Duration) -> String {
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

pub(super) fn size(bytes: u64) -> String {
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
    fn civil_dates_and_sizes() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(utc(UNIX_EPOCH + Duration::from_secs(1_735_689_599)), "2024-12-31T23:59:59Z");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
    }
}
