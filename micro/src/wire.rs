//! The JSON of the PING, INFO and STATS replies, exactly as natscli's schemas want it, and tolerant when read
//! back by the discovery client (every field has a default; older replies with `subjects` still parse).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::Metadata;

/// Reads `null` as the default (Go sends `"metadata": null`, nats.py `"description": null`).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// `type` of a PING reply.
pub const PING_TYPE: &str = "io.nats.micro.v1.ping_response";
/// `type` of an INFO reply.
pub const INFO_TYPE: &str = "io.nats.micro.v1.info_response";
/// `type` of a STATS reply.
pub const STATS_TYPE: &str = "io.nats.micro.v1.stats_response";

/// The reply to PING.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PingResponse {
    /// Always [`PING_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// Version.
    pub version: String,
    /// Metadata (`{}` when empty).
    #[serde(deserialize_with = "nullable")]
    pub metadata: Metadata,
}

/// One endpoint in an INFO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointInfo {
    /// Endpoint name.
    pub name: String,
    /// Full subject, group prefix included.
    pub subject: String,
    /// Queue group, `""` when disabled.
    #[serde(deserialize_with = "nullable")]
    pub queue_group: String,
    /// Metadata (`{}` when empty).
    #[serde(deserialize_with = "nullable")]
    pub metadata: Metadata,
}

/// The reply to INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InfoResponse {
    /// Always [`INFO_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// Version.
    pub version: String,
    /// Metadata (`{}` when empty).
    #[serde(deserialize_with = "nullable")]
    pub metadata: Metadata,
    /// Description (`""` when unset).
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    /// Endpoints in registration order.
    #[serde(deserialize_with = "nullable")]
    pub endpoints: Vec<EndpointInfo>,
    /// Pre-2023 replies listed bare subjects instead of endpoints; read, never written.
    #[serde(skip_serializing, deserialize_with = "nullable")]
    pub subjects: Vec<String>,
}

/// One endpoint in a STATS reply. Durations are integer nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointStats {
    /// Endpoint name.
    pub name: String,
    /// Full subject.
    pub subject: String,
    /// Queue group, `""` when disabled.
    #[serde(deserialize_with = "nullable")]
    pub queue_group: String,
    /// Requests received.
    pub num_requests: u64,
    /// Requests that ended in an error.
    pub num_errors: u64,
    /// `code:description` of the last error, `""` before the first.
    #[serde(deserialize_with = "nullable")]
    pub last_error: String,
    /// Total processing time, nanoseconds.
    pub processing_time: u64,
    /// `processing_time / num_requests`, nanoseconds (0 without requests).
    pub average_processing_time: u64,
    /// What the stats handler returned; absent without a handler.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// The reply to STATS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsResponse {
    /// Always [`STATS_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Service name.
    pub name: String,
    /// Instance id.
    pub id: String,
    /// Version.
    pub version: String,
    /// Metadata (`{}` when empty).
    #[serde(deserialize_with = "nullable")]
    pub metadata: Metadata,
    /// When the service started (or was last reset), RFC 3339 in UTC.
    pub started: String,
    /// Endpoints in registration order.
    #[serde(deserialize_with = "nullable")]
    pub endpoints: Vec<EndpointStats>,
}

/// `time` as RFC 3339 in UTC with nanoseconds, trailing zeros dropped (as Go's RFC3339Nano).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    let nanos = since.subsec_nanos();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_formats_like_go() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_711_197_534, 36_035_440);
        assert_eq!(rfc3339(t), "2024-03-23T12:38:54.03603544Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::new(4_102_444_799, 1)), "2099-12-31T23:59:59.000000001Z");
    }

    #[test]
    fn replies_parse_tolerantly() {
        let old = r#"{"type":"io.nats.micro.v1.info_response","name":"a","id":"1","version":"1.0.0","subjects":["x"]}"#;
        let info: InfoResponse = serde_json::from_str(old).unwrap();
        assert_eq!((info.subjects.len(), info.endpoints.len(), info.metadata.len()), (1, 0, 0));
        let written = serde_json::to_string(&info).unwrap();
        assert!(written.contains(r#""description":"""#) && written.contains(r#""metadata":{}"#), "{written}");
        assert!(!written.contains("subjects"));
        let stats = EndpointStats::default();
        let json = serde_json::to_string(&stats).unwrap();
        assert!(json.contains(r#""last_error":"""#) && !json.contains("data"), "{json}");
    }
}
