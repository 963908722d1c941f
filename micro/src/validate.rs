//! The naming rules of ADR-32 and the JSON schemas natscli checks replies against.

use std::fmt;

/// A service, endpoint or group configuration the Service API cannot carry.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A service or endpoint name that is not `[A-Za-z0-9_-]+`.
    InvalidName(String),
    /// A version that is not semantic versioning (`1.2.3`, `1.0.0-rc.1+build`).
    InvalidVersion(String),
    /// An endpoint subject or group prefix that cannot be subscribed to, or that is reserved.
    InvalidSubject(String),
    /// A queue group that cannot be used.
    InvalidQueueGroup(String),
    /// Metadata with a key under the reserved `_nats` prefix, or over the 128 KB size limit.
    InvalidMetadata(String),
    /// An API prefix that is not a valid subject.
    InvalidPrefix(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(n) => write!(f, "invalid name {n:?}: use letters, digits, '-' and '_'"),
            Self::InvalidVersion(v) => write!(f, "invalid version {v:?}: not semantic versioning"),
            Self::InvalidSubject(s) => write!(f, "invalid subject {s:?}"),
            Self::InvalidQueueGroup(q) => write!(f, "invalid queue group {q:?}"),
            Self::InvalidMetadata(why) => write!(f, "invalid metadata: {why}"),
            Self::InvalidPrefix(p) => write!(f, "invalid API prefix {p:?}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// `^[A-Za-z0-9_-]+$`: service names and endpoint names (the schema's `basic_name`; no dots, so natscli
/// accepts every endpoint).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Semantic versioning 2.0.0, as the official regular expression: `MAJOR.MINOR.PATCH`, numbers without
/// leading zeros, optional `-prerelease` (dot-separated identifiers; numeric ones without leading zeros) and
/// `+build` (dot-separated alphanumeric identifiers).
pub fn is_valid_semver(version: &str) -> bool {
    let (rest, build) = match version.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    let ident = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| numeric(p)) {
        return false;
    }
    if let Some(pre) = pre {
        // A purely numeric pre-release identifier must not have leading zeros.
        let ok = pre.split('.').all(|id| ident(id) && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id)));
        if !ok {
            return false;
        }
    }
    build.is_none_or(|b| b.split('.').all(ident))
}

/// An endpoint subject: a valid subscribe subject not under the `$SRV` verbs.
pub(crate) fn check_endpoint_subject(subject: &str, prefix: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::InvalidSubject(subject.to_owned());
    nats_proto::subject::validate_subscribe_subject(subject.as_bytes()).map_err(|_| bad())?;
    // `>` only as the whole last token (`a>` would be a literal to the server, but reads as a mistake).
    if subject.split('.').any(|t| t.contains('>') && t != ">") {
        return Err(bad());
    }
    let reserved = subject == prefix
        || subject == "$SRV"
        || subject.starts_with(&format!("{prefix}."))
        || subject.starts_with("$SRV.");
    if reserved {
        return Err(bad());
    }
    Ok(())
}

/// A group prefix: a subject without `>` (it always has something after it).
pub(crate) fn check_group_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let ok = nats_proto::subject::validate_subscribe_subject(prefix.as_bytes()).is_ok() && !prefix.contains('>');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidSubject(prefix.to_owned()))
    }
}

/// Joins a group prefix and a subject, skipping empty parts so no leading or trailing dot appears.
pub(crate) fn join_subject(prefix: &str, subject: &str) -> String {
    match (prefix.is_empty(), subject.is_empty()) {
        (true, _) => subject.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{subject}"),
    }
}

/// ADR-33: keys under `_nats` are reserved for the library; keys plus values at most 128 KB.
pub(crate) fn check_metadata<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Result<(), ConfigError> {
    let mut size = 0;
    for (k, v) in pairs {
        if k.starts_with("_nats") {
            return Err(ConfigError::InvalidMetadata(format!("key {k:?} uses the reserved _nats prefix")));
        }
        size += k.len() + v.len();
    }
    if size > 128 * 1024 {
        return Err(ConfigError::InvalidMetadata(format!("{size} bytes of keys and values, over 128 KB")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["svc", "my-service_2", "A"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "a.b", "a b", "a*", "ünï"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn semver() {
        for ok in [
            "0.0.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x.7.z.92",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
            "1.0.0-rc.1+build.1",
            "1.0.0--",
        ] {
            assert!(is_valid_semver(ok), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "v1.2.3",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1.2.3-01",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "1.2.3+a..b",
            "1.2.3-a_b",
            " 1.2.3",
            "a.b.c",
        ] {
            assert!(!is_valid_semver(bad), "{bad}");
        }
    }

    #[test]
    fn subjects_and_groups() {
        assert_eq!(join_subject("", "a"), "a");
        assert_eq!(join_subject("g", ""), "g");
        assert_eq!(join_subject("g.h", "a.*"), "g.h.a.*");
        assert!(check_endpoint_subject("a.>", "$SRV").is_ok());
        assert!(check_endpoint_subject("$SRV.PING", "$SRV").is_err());
        assert!(check_endpoint_subject("X.INFO", "X").is_err());
        assert!(check_endpoint_subject("a b", "$SRV").is_err());
        assert!(check_endpoint_subject("a.>.b", "$SRV").is_err());
        assert!(check_group_prefix("g.h").is_ok());
        assert!(check_group_prefix("g.>").is_err());
    }
}
