//! The API prefix (default, domain, custom) and the subject of every JetStream call (ADR-1, ADR-19).
//!
//! Every call is a request to `<prefix>.<API>`. The prefix is `$JS.API` by default, `$JS.<domain>.API` to reach
//! the JetStream of a domain across leafnodes, or any subject an account imports the API under. Builders that
//! take a stream or consumer name check it (ADR-6) so a bad name is a typed error, not a subject that means
//! something else.
//!
//! ```
//! use nats_jetstream::api::ApiPrefix;
//!
//! let hub = ApiPrefix::with_domain("hub")?;
//! assert_eq!(hub.stream_info("ORDERS")?, "$JS.hub.API.STREAM.INFO.ORDERS");
//! assert_eq!(hub.kv_put_subject("cfg", "a.b"), "$JS.hub.API.$KV.cfg.a.b");
//! assert_eq!(ApiPrefix::default().kv_put_subject("cfg", "a.b"), "$KV.cfg.a.b");
//! # Ok::<(), nats_jetstream::error::JetStreamError>(())
//! ```

use nats_proto::subject::{validate_publish_subject, validate_subscribe_subject};

use crate::error::JetStreamError;

/// The API prefix when neither a domain nor a custom prefix is set.
pub const DEFAULT_API_PREFIX: &str = "$JS.API";

/// Longest stream, consumer or durable name the server accepts (`JSMaxNameLen`).
pub const MAX_NAME_LEN: usize = 255;

/// Where the JetStream API is reached: `$JS.API`, `$JS.<domain>.API`, or a custom (imported) prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiPrefix {
    prefix: String,
    domain: Option<String>,
}

impl Default for ApiPrefix {
    fn default() -> Self {
        Self { prefix: DEFAULT_API_PREFIX.to_owned(), domain: None }
    }
}

impl ApiPrefix {
    /// The default prefix, `$JS.API`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prefix of JetStream domain `domain`: `$JS.<domain>.API`. The domain is one subject token.
    pub fn with_domain(domain: &str) -> Result<Self, JetStreamError> {
        let bad = |reason| Err(JetStreamError::InvalidPrefix { prefix: domain.to_owned(), reason });
        if domain.is_empty() {
            return bad("empty domain");
        }
        if domain.contains('.') {
            return bad("a domain is a single subject token and cannot contain '.'");
        }
        if domain.contains(['*', '>']) || validate_publish_subject(domain.as_bytes()).is_err() {
            return bad("a domain cannot contain whitespace, control characters or wildcards");
        }
        Ok(Self { prefix: format!("$JS.{domain}.API"), domain: Some(domain.to_owned()) })
    }

    /// A custom prefix that replaces `$JS.API` entirely (an API imported from another account). A trailing
    /// `.` is dropped.
    pub fn custom(prefix: &str) -> Result<Self, JetStreamError> {
        let trimmed = prefix.strip_suffix('.').unwrap_or(prefix);
        if let Err(e) = validate_publish_subject(trimmed.as_bytes()) {
            let reason = match e {
                nats_proto::SubjectError::Wildcard => "a prefix cannot contain wildcards",
                nats_proto::SubjectError::Empty => "empty prefix",
                _ => "not a valid subject",
            };
            return Err(JetStreamError::InvalidPrefix { prefix: prefix.to_owned(), reason });
        }
        Ok(Self { prefix: trimmed.to_owned(), domain: None })
    }

    /// The prefix from optional user settings. Empty strings count as unset; a domain and a prefix together
    /// are [`JetStreamError::DomainAndPrefix`].
    pub fn from_options(domain: Option<&str>, prefix: Option<&str>) -> Result<Self, JetStreamError> {
        match (domain.filter(|d| !d.is_empty()), prefix.filter(|p| !p.is_empty())) {
            (Some(_), Some(_)) => Err(JetStreamError::DomainAndPrefix),
            (Some(domain), None) => Self::with_domain(domain),
            (None, Some(prefix)) => Self::custom(prefix),
            (None, None) => Ok(Self::default()),
        }
    }

    /// The prefix itself, without a trailing `.`.
    pub fn as_str(&self) -> &str {
        &self.prefix
    }

    /// The domain, when built with [`ApiPrefix::with_domain`].
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// True for `$JS.API`: Key/Value writes then go to the local `$KV.` subjects.
    pub fn is_default(&self) -> bool {
        self.prefix == DEFAULT_API_PREFIX
    }

    /// The subject to publish a stored message of a Key/Value bucket or an object store to: the subject
    /// itself with the default prefix, else `<prefix>.<subject>`, which the leafnode or import maps back
    /// (ADR-19). Consumer filters and stored subjects stay unprefixed.
    pub fn data_subject(&self, subject: &str) -> String {
        if self.is_default() {
            subject.to_owned()
        } else {
            format!("{}.{subject}", self.prefix)
        }
    }

    fn join(&self, api: &str) -> String {
        format!("{}.{api}", self.prefix)
    }

    fn with_stream(&self, api: &str, stream: &str) -> Result<String, JetStreamError> {
        validate_stream_name(stream)?;
        Ok(format!("{}.{api}.{stream}", self.prefix))
    }

    fn with_consumer(&self, api: &str, stream: &str, consumer: &str) -> Result<String, JetStreamError> {
        validate_stream_name(stream)?;
        validate_consumer_name(consumer)?;
        Ok(format!("{}.{api}.{stream}.{consumer}", self.prefix))
    }

    /// `<P>.INFO`: account information (also the cheapest "is JetStream there?" probe).
    pub fn account_info(&self) -> String {
        self.join("INFO")
    }

    /// `<P>.STREAM.CREATE.<stream>`.
    pub fn stream_create(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("STREAM.CREATE", stream)
    }

    /// `<P>.STREAM.UPDATE.<stream>`.
    pub fn stream_update(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("STREAM.UPDATE", stream)
    }

    /// `<P>.STREAM.INFO.<stream>`.
    pub fn stream_info(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("STREAM.INFO", stream)
    }

    /// `<P>.STREAM.DELETE.<stream>`.
    pub fn stream_delete(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("STREAM.DELETE", stream)
    }

    /// `<P>.STREAM.PURGE.<stream>`.
    pub fn stream_purge(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("STREAM.PURGE", stream)
    }

    /// `<P>.STREAM.NAMES` (paged).
    pub fn stream_names(&self) -> String {
        self.join("STREAM.NAMES")
    }

    /// `<P>.STREAM.LIST` (paged).
    pub fn stream_list(&self) -> String {
        self.join("STREAM.LIST")
    }

    /// `<P>.STREAM.MSG.GET.<stream>`: a stored message, from the leader.
    pub fn stream_msg_get(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("STREAM.MSG.GET", stream)
    }

    /// `<P>.STREAM.MSG.DELETE.<stream>`.
    pub fn stream_msg_delete(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("STREAM.MSG.DELETE", stream)
    }

    /// `<P>.DIRECT.GET.<stream>`: direct get with a JSON request body (streams with `allow_direct`).
    pub fn direct_get(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("DIRECT.GET", stream)
    }

    /// `<P>.DIRECT.GET.<stream>.<subject>`: the last message on a literal subject, requested with an empty
    /// body.
    pub fn direct_get_last(&self, stream: &str, subject: &str) -> Result<String, JetStreamError> {
        validate_publish_subject(subject.as_bytes())
            .map_err(|error| JetStreamError::InvalidSubject { subject: subject.to_owned(), error })?;
        Ok(format!("{}.{subject}", self.with_stream("DIRECT.GET", stream)?))
    }

    /// `<P>.CONSUMER.CREATE.<stream>.<consumer>[.<filter>]` (server 2.9+): create or update a named consumer.
    /// `filter`, if given, must equal the config's single `filter_subject`; it may hold wildcards.
    pub fn consumer_create(
        &self,
        stream: &str,
        consumer: &str,
        filter: Option<&str>,
    ) -> Result<String, JetStreamError> {
        let base = self.with_consumer("CONSUMER.CREATE", stream, consumer)?;
        match filter {
            None => Ok(base),
            Some(filter) => {
                validate_subscribe_subject(filter.as_bytes())
                    .map_err(|error| JetStreamError::InvalidSubject { subject: filter.to_owned(), error })?;
                Ok(format!("{base}.{filter}"))
            }
        }
    }

    /// `<P>.CONSUMER.CREATE.<stream>`: legacy ephemeral create, the server picks the name.
    pub fn consumer_create_ephemeral(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("CONSUMER.CREATE", stream)
    }

    /// `<P>.CONSUMER.DURABLE.CREATE.<stream>.<durable>`: legacy durable create (before 2.9).
    pub fn consumer_durable_create(&self, stream: &str, durable: &str) -> Result<String, JetStreamError> {
        self.with_consumer("CONSUMER.DURABLE.CREATE", stream, durable)
    }

    /// `<P>.CONSUMER.INFO.<stream>.<consumer>`.
    pub fn consumer_info(&self, stream: &str, consumer: &str) -> Result<String, JetStreamError> {
        self.with_consumer("CONSUMER.INFO", stream, consumer)
    }

    /// `<P>.CONSUMER.DELETE.<stream>.<consumer>`.
    pub fn consumer_delete(&self, stream: &str, consumer: &str) -> Result<String, JetStreamError> {
        self.with_consumer("CONSUMER.DELETE", stream, consumer)
    }

    /// `<P>.CONSUMER.NAMES.<stream>` (paged).
    pub fn consumer_names(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("CONSUMER.NAMES", stream)
    }

    /// `<P>.CONSUMER.LIST.<stream>` (paged).
    pub fn consumer_list(&self, stream: &str) -> Result<String, JetStreamError> {
        self.with_stream("CONSUMER.LIST", stream)
    }

    /// `<P>.CONSUMER.MSG.NEXT.<stream>.<consumer>`: where pull requests go (replies arrive on a dedicated
    /// subscription, not through request/reply).
    pub fn consumer_msg_next(&self, stream: &str, consumer: &str) -> Result<String, JetStreamError> {
        self.with_consumer("CONSUMER.MSG.NEXT", stream, consumer)
    }

    /// `<P>.CONSUMER.PAUSE.<stream>.<consumer>` (server 2.11+).
    pub fn consumer_pause(&self, stream: &str, consumer: &str) -> Result<String, JetStreamError> {
        self.with_consumer("CONSUMER.PAUSE", stream, consumer)
    }

    /// `<P>.CONSUMER.UNPIN.<stream>.<consumer>` (server 2.11+).
    pub fn consumer_unpin(&self, stream: &str, consumer: &str) -> Result<String, JetStreamError> {
        self.with_consumer("CONSUMER.UNPIN", stream, consumer)
    }

    /// The subject a Key/Value put (or delete/purge marker) is published to: `$KV.<bucket>.<key>` with the
    /// default prefix, else `<prefix>.$KV.<bucket>.<key>`, which the leafnode or import maps back (ADR-19).
    ///
    /// The bucket and key are not checked here; validate them first (see [`validate_bucket`]).
    pub fn kv_put_subject(&self, bucket: &str, key: &str) -> String {
        self.data_subject(&kv_subject(bucket, key))
    }

    /// The direct-get subject for the latest value of a key: `<P>.DIRECT.GET.KV_<bucket>.$KV.<bucket>.<key>`.
    ///
    /// The bucket and key are not checked here; validate them first.
    pub fn kv_direct_get(&self, bucket: &str, key: &str) -> String {
        format!("{}.DIRECT.GET.{}.{}", self.prefix, kv_stream_name(bucket), kv_subject(bucket, key))
    }
}

/// The stream behind a Key/Value bucket: `KV_<bucket>`.
pub fn kv_stream_name(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// The unprefixed subject of a key (or key filter): `$KV.<bucket>.<key>`. Consumer filters and stored message
/// subjects always use this form, whatever the API prefix.
pub fn kv_subject(bucket: &str, key: &str) -> String {
    format!("$KV.{bucket}.{key}")
}

/// The subjects of a bucket's stream: `$KV.<bucket>.>`.
pub fn kv_stream_subjects(bucket: &str) -> String {
    format!("$KV.{bucket}.>")
}

fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Some("longer than 255 bytes");
    }
    for b in name.bytes() {
        match b {
            b'.' | b'*' | b'>' | b'/' | b'\\' => return Some("contains one of . * > / \\"),
            b if b.is_ascii_whitespace() => return Some("contains whitespace"),
            0x21..=0x7e => {}
            _ => return Some("contains a character that is not printable ASCII"),
        }
    }
    None
}

/// Checks a stream name (ADR-6): 1 to 255 printable ASCII characters, none of them whitespace or `. * > / \`.
pub fn validate_stream_name(name: &str) -> Result<(), JetStreamError> {
    match name_problem(name) {
        None => Ok(()),
        Some(reason) => Err(JetStreamError::InvalidName { name: name.to_owned(), reason }),
    }
}

/// Checks a consumer or durable name; the rules are those of [`validate_stream_name`].
pub fn validate_consumer_name(name: &str) -> Result<(), JetStreamError> {
    validate_stream_name(name)
}

/// Checks a Key/Value bucket name: one or more of `A-Z a-z 0-9 _ -` (so `KV_<bucket>` is a valid stream name
/// too, at most 252 characters).
pub fn validate_bucket(bucket: &str) -> Result<(), JetStreamError> {
    let bad = |reason| Err(JetStreamError::InvalidBucket { bucket: bucket.to_owned(), reason });
    if bucket.is_empty() {
        return bad("empty");
    }
    if bucket.len() > MAX_NAME_LEN - 3 {
        return bad("longer than 252 bytes (the stream name KV_<bucket> is capped at 255)");
    }
    if !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return bad("only A-Z, a-z, 0-9, '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> [ApiPrefix; 3] {
        [ApiPrefix::default(), ApiPrefix::with_domain("hub").unwrap(), ApiPrefix::custom("JS.acc.API").unwrap()]
    }

    #[test]
    fn prefix_kinds() {
        let [default, domain, custom] = prefixes();
        assert_eq!((default.as_str(), default.is_default(), default.domain()), ("$JS.API", true, None));
        assert_eq!((domain.as_str(), domain.is_default(), domain.domain()), ("$JS.hub.API", false, Some("hub")));
        assert_eq!((custom.as_str(), custom.is_default(), custom.domain()), ("JS.acc.API", false, None));
        assert_eq!(ApiPrefix::custom("JS.acc.API.").unwrap().as_str(), "JS.acc.API");
        assert_eq!(ApiPrefix::new(), ApiPrefix::default());
    }

    #[test]
    fn prefix_options() {
        assert_eq!(ApiPrefix::from_options(Some("d"), Some("p")), Err(JetStreamError::DomainAndPrefix));
        assert_eq!(ApiPrefix::from_options(None, None).unwrap(), ApiPrefix::default());
        assert_eq!(ApiPrefix::from_options(Some(""), Some("")).unwrap(), ApiPrefix::default());
        assert_eq!(ApiPrefix::from_options(Some("d"), Some("")).unwrap().as_str(), "$JS.d.API");
        assert_eq!(ApiPrefix::from_options(None, Some("x.y")).unwrap().as_str(), "x.y");
    }

    #[test]
    fn bad_prefixes() {
        for d in ["", "a.b", "a b", "a*", ">", "a\r\n"] {
            assert!(matches!(ApiPrefix::with_domain(d), Err(JetStreamError::InvalidPrefix { .. })), "{d:?}");
        }
        for p in ["", ".", "a..b", "a.*", "a.>", "a b", ".a"] {
            assert!(matches!(ApiPrefix::custom(p), Err(JetStreamError::InvalidPrefix { .. })), "{p:?}");
        }
    }

    #[test]
    fn every_builder_under_every_prefix() {
        for p in prefixes() {
            let x = p.as_str();
            let cases: Vec<(String, String)> = vec![
                (p.account_info(), format!("{x}.INFO")),
                (p.stream_create("S").unwrap(), format!("{x}.STREAM.CREATE.S")),
                (p.stream_update("S").unwrap(), format!("{x}.STREAM.UPDATE.S")),
                (p.stream_info("S").unwrap(), format!("{x}.STREAM.INFO.S")),
                (p.stream_delete("S").unwrap(), format!("{x}.STREAM.DELETE.S")),
                (p.stream_purge("S").unwrap(), format!("{x}.STREAM.PURGE.S")),
                (p.stream_names(), format!("{x}.STREAM.NAMES")),
                (p.stream_list(), format!("{x}.STREAM.LIST")),
                (p.stream_msg_get("S").unwrap(), format!("{x}.STREAM.MSG.GET.S")),
                (p.stream_msg_delete("S").unwrap(), format!("{x}.STREAM.MSG.DELETE.S")),
                (p.direct_get("S").unwrap(), format!("{x}.DIRECT.GET.S")),
                (p.direct_get_last("S", "a.b.c").unwrap(), format!("{x}.DIRECT.GET.S.a.b.c")),
                (p.consumer_create("S", "C", None).unwrap(), format!("{x}.CONSUMER.CREATE.S.C")),
                (p.consumer_create("S", "C", Some("o.*.>")).unwrap(), format!("{x}.CONSUMER.CREATE.S.C.o.*.>")),
                (p.consumer_create_ephemeral("S").unwrap(), format!("{x}.CONSUMER.CREATE.S")),
                (p.consumer_durable_create("S", "D").unwrap(), format!("{x}.CONSUMER.DURABLE.CREATE.S.D")),
                (p.consumer_info("S", "C").unwrap(), format!("{x}.CONSUMER.INFO.S.C")),
                (p.consumer_delete("S", "C").unwrap(), format!("{x}.CONSUMER.DELETE.S.C")),
                (p.consumer_names("S").unwrap(), format!("{x}.CONSUMER.NAMES.S")),
                (p.consumer_list("S").unwrap(), format!("{x}.CONSUMER.LIST.S")),
                (p.consumer_msg_next("S", "C").unwrap(), format!("{x}.CONSUMER.MSG.NEXT.S.C")),
                (p.consumer_pause("S", "C").unwrap(), format!("{x}.CONSUMER.PAUSE.S.C")),
                (p.consumer_unpin("S", "C").unwrap(), format!("{x}.CONSUMER.UNPIN.S.C")),
                (p.kv_direct_get("b", "k.1"), format!("{x}.DIRECT.GET.KV_b.$KV.b.k.1")),
            ];
            for (got, want) in cases {
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn literal_subjects_for_default_prefix() {
        let p = ApiPrefix::default();
        assert_eq!(p.stream_info("ORDERS").unwrap(), "$JS.API.STREAM.INFO.ORDERS");
        assert_eq!(p.consumer_msg_next("ORDERS", "d1").unwrap(), "$JS.API.CONSUMER.MSG.NEXT.ORDERS.d1");
        assert_eq!(p.kv_direct_get("cfg", "a"), "$JS.API.DIRECT.GET.KV_cfg.$KV.cfg.a");
    }

    #[test]
    fn kv_writes_follow_the_prefix_but_filters_do_not() {
        let [default, domain, custom] = prefixes();
        assert_eq!(default.kv_put_subject("b", "k"), "$KV.b.k");
        assert_eq!(domain.kv_put_subject("b", "k"), "$JS.hub.API.$KV.b.k");
        assert_eq!(custom.kv_put_subject("b", "a.b"), "JS.acc.API.$KV.b.a.b");
        assert_eq!(ApiPrefix::custom("$JS.API").unwrap().kv_put_subject("b", "k"), "$KV.b.k");
        assert_eq!(kv_subject("b", "k.>"), "$KV.b.k.>");
        assert_eq!(kv_stream_name("b"), "KV_b");
        assert_eq!(kv_stream_subjects("b"), "$KV.b.>");
    }

    #[test]
    fn builders_reject_bad_names_and_subjects() {
        let p = ApiPrefix::default();
        assert!(matches!(p.stream_info("a.b"), Err(JetStreamError::InvalidName { .. })));
        assert!(matches!(p.consumer_info("S", "c d"), Err(JetStreamError::InvalidName { .. })));
        assert!(matches!(p.consumer_info("S*", "c"), Err(JetStreamError::InvalidName { .. })));
        assert!(matches!(p.consumer_durable_create("S", ""), Err(JetStreamError::InvalidName { .. })));
        assert!(matches!(p.direct_get_last("S", "a.*"), Err(JetStreamError::InvalidSubject { .. })));
        assert!(matches!(p.direct_get_last("S", ""), Err(JetStreamError::InvalidSubject { .. })));
        assert!(matches!(p.consumer_create("S", "C", Some("a.>.b")), Err(JetStreamError::InvalidSubject { .. })));
        assert!(matches!(p.consumer_create("S", "C", Some("a..b")), Err(JetStreamError::InvalidSubject { .. })));
    }

    #[test]
    fn name_rules() {
        let long = "x".repeat(MAX_NAME_LEN);
        for ok in ["ORDERS", "a-b_c", "KV_cfg", "$weird!#%&'()+,:;<=?@[]^`{|}~\"", long.as_str()] {
            assert_eq!(validate_stream_name(ok), Ok(()), "{ok:?}");
        }
        let too_long = "x".repeat(MAX_NAME_LEN + 1);
        let cases = [
            ("", "empty"),
            (too_long.as_str(), "longer than 255 bytes"),
            ("a.b", "contains one of . * > / \\"),
            ("a*", "contains one of . * > / \\"),
            ("a>", "contains one of . * > / \\"),
            ("a/b", "contains one of . * > / \\"),
            ("a\\b", "contains one of . * > / \\"),
            ("a b", "contains whitespace"),
            ("a\tb", "contains whitespace"),
            ("a\nb", "contains whitespace"),
            ("a\u{7f}", "contains a character that is not printable ASCII"),
            ("a\u{1}", "contains a character that is not printable ASCII"),
            ("é", "contains a character that is not printable ASCII"),
        ];
        for (name, reason) in cases {
            assert_eq!(validate_consumer_name(name), Err(JetStreamError::InvalidName { name: name.into(), reason }));
        }
    }

    proptest::proptest! {
        #[test]
        fn valid_names_stay_one_token(name in "[\\x00-\\x7f]{0,20}|\\PC{0,4}") {
            // A name that passes can never add tokens, wildcards or whitespace to a subject.
            if let Ok(subject) = ApiPrefix::default().consumer_info("S", &name) {
                proptest::prop_assert_eq!(subject.split('.').count(), 6);
                proptest::prop_assert!(validate_publish_subject(subject.as_bytes()).is_ok());
                proptest::prop_assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN);
            }
        }
    }

    #[test]
    fn bucket_rules() {
        for ok in ["cfg", "A-b_9", &"b".repeat(252)] {
            assert_eq!(validate_bucket(ok), Ok(()), "{ok:?}");
        }
        for bad in ["", "a.b", "a b", "a*", "a>", "é", "a/b", &"b".repeat(253)] {
            assert!(matches!(validate_bucket(bad), Err(JetStreamError::InvalidBucket { .. })), "{bad:?}");
        }
    }
}
