//! Acknowledgements: the ack bodies, the metadata carried by a delivered message's reply subject, and the
//! client-side rule that a message is acked at most once.
//!
//! An ack is a publish (or, for a "double ack", a request) to the message's reply subject, which has the form
//! `$JS.ACK.[<domain>.<account_hash>.]<stream>.<consumer>.<delivered>.<stream_seq>.<consumer_seq>.<ts_ns>.<pending>`.
//!
//! ```
//! use std::time::Duration;
//! use nats_jetstream::ack::{AckKind, AckMetadata};
//!
//! assert_eq!(&AckKind::Ack.payload()[..], b"+ACK");
//! let nak = AckKind::Nak { delay: Some(Duration::from_secs(2)) };
//! assert_eq!(&nak.payload()[..], br#"-NAK {"delay":2000000000}"#);
//!
//! let meta = AckMetadata::parse("$JS.ACK.hub.ACC.ORDERS.worker.1.120.98.1700000000000000000.4.x7k")?;
//! assert_eq!((meta.domain, meta.stream, meta.stream_sequence, meta.pending), (Some("hub"), "ORDERS", 120, 4));
//! # Ok::<(), nats_jetstream::ack::AckParseError>(())
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use crate::model::PullRequest;

/// An acknowledgement to send for a delivered message.
#[derive(Debug, Clone, PartialEq)]
pub enum AckKind {
    /// `+ACK`: processed.
    Ack,
    /// `-NAK`: redeliver, at once or after `delay`.
    Nak {
        /// How long the server should wait before redelivering.
        delay: Option<Duration>,
    },
    /// `+WPI`: still working on it; resets the ack wait. Not terminal: it may be sent many times.
    Progress,
    /// `+TERM`: never redeliver.
    Term {
        /// Why, for the server's advisory.
        reason: Option<String>,
    },
    /// `+NXT`: ack, and pull the next message(s) to the same reply subject in one step.
    Next {
        /// The pull request (none: one message).
        request: Option<PullRequest>,
    },
}

impl AckKind {
    /// The body to publish to the message's reply subject.
    pub fn payload(&self) -> Bytes {
        match self {
            AckKind::Ack => Bytes::from_static(b"+ACK"),
            AckKind::Nak { delay: None } => Bytes::from_static(b"-NAK"),
            AckKind::Nak { delay: Some(delay) } => {
                let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
                Bytes::from(format!("-NAK {{\"delay\":{nanos}}}"))
            }
            AckKind::Progress => Bytes::from_static(b"+WPI"),
            AckKind::Term { reason: None } => Bytes::from_static(b"+TERM"),
            AckKind::Term { reason: Some(reason) } => Bytes::from(format!("+TERM {reason}")),
            AckKind::Next { request: None } => Bytes::from_static(b"+NXT"),
            AckKind::Next { request: Some(request) } => {
                let json = serde_json::to_vec(request).unwrap_or_default();
                let mut out = BytesMut::with_capacity(5 + json.len());
                out.put_slice(b"+NXT ");
                out.put_slice(&json);
                out.freeze()
            }
        }
    }

    /// True for the acks that settle a message (`+ACK`, `-NAK`, `+TERM`, `+NXT`); `+WPI` does not.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, AckKind::Progress)
    }
}

/// Why an ack reply subject could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AckParseError {
    /// The subject is not UTF-8.
    NotUtf8,
    /// The subject does not start with `$JS.ACK.`.
    NotAckSubject,
    /// Neither 9 tokens (v1) nor 11 or more (v2).
    TokenCount(usize),
    /// A token that must hold a name is empty.
    EmptyToken(&'static str),
    /// A token that must hold a number does not.
    InvalidNumber(&'static str),
    /// The timestamp is beyond what `SystemTime` can hold.
    TimestampOutOfRange,
}

impl fmt::Display for AckParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AckParseError::NotUtf8 => f.write_str("ack subject is not UTF-8"),
            AckParseError::NotAckSubject => f.write_str("not a $JS.ACK subject"),
            AckParseError::TokenCount(n) => write!(f, "ack subject has {n} tokens; expected 9 or at least 11"),
            AckParseError::EmptyToken(field) => write!(f, "ack subject has an empty {field}"),
            AckParseError::InvalidNumber(field) => write!(f, "ack subject has an invalid {field}"),
            AckParseError::TimestampOutOfRange => f.write_str("ack subject timestamp is out of range"),
        }
    }
}

impl std::error::Error for AckParseError {}

/// The metadata of a delivered message, borrowed from its reply subject (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckMetadata<'a> {
    /// The JetStream domain (v2 subjects; `None` for v1 and for the "no domain" token `_`).
    pub domain: Option<&'a str>,
    /// The account hash (v2 subjects only).
    pub account_hash: Option<&'a str>,
    /// The stream.
    pub stream: &'a str,
    /// The consumer.
    pub consumer: &'a str,
    /// How many times the message has been delivered (2 or more: a redelivery).
    pub delivered: u64,
    /// The message's sequence in the stream.
    pub stream_sequence: u64,
    /// The delivery's sequence in the consumer.
    pub consumer_sequence: u64,
    /// When the message was stored.
    pub timestamp: SystemTime,
    /// How many messages the consumer had left after this one.
    pub pending: u64,
}

const PREFIX: &str = "$JS.ACK.";
/// Tokens of a v1 subject, and the fewest of a v2 one.
const V1_TOKENS: usize = 9;
const V2_TOKENS: usize = 11;

/// Digits only, no sign, no overflow.
fn number(token: &str, field: &'static str) -> Result<u64, AckParseError> {
    if token.is_empty() {
        return Err(AckParseError::InvalidNumber(field));
    }
    token.bytes().try_fold(0u64, |acc, b| {
        if !b.is_ascii_digit() {
            return Err(AckParseError::InvalidNumber(field));
        }
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(b - b'0')))
            .ok_or(AckParseError::InvalidNumber(field))
    })
}

fn name<'a>(token: &'a str, field: &'static str) -> Result<&'a str, AckParseError> {
    if token.is_empty() {
        Err(AckParseError::EmptyToken(field))
    } else {
        Ok(token)
    }
}

impl<'a> AckMetadata<'a> {
    /// Parses a reply subject (v1: 9 tokens, v2: 11 or more).
    pub fn parse(subject: &'a str) -> Result<Self, AckParseError> {
        let rest = subject.strip_prefix(PREFIX).ok_or(AckParseError::NotAckSubject)?;
        // The first 9 tokens after the prefix cover the v2 layout; count the rest without storing it.
        let mut tokens = [""; V2_TOKENS - 2];
        let mut count = 2;
        for (i, token) in rest.split('.').enumerate() {
            if let Some(slot) = tokens.get_mut(i) {
                *slot = token;
            }
            count += 1;
        }
        let (domain, account_hash, t) = match count {
            V1_TOKENS => (None, None, &tokens[..7]),
            n if n >= V2_TOKENS => {
                let domain = match tokens[0] {
                    "" | "_" => None,
                    d => Some(d),
                };
                (domain, Some(name(tokens[1], "account hash")?), &tokens[2..])
            }
            n => return Err(AckParseError::TokenCount(n)),
        };
        let nanos = number(t[5], "timestamp")?;
        let timestamp = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_nanos(nanos))
            .ok_or(AckParseError::TimestampOutOfRange)?;
        Ok(AckMetadata {
            domain,
            account_hash,
            stream: name(t[0], "stream")?,
            consumer: name(t[1], "consumer")?,
            delivered: number(t[2], "delivered count")?,
            stream_sequence: number(t[3], "stream sequence")?,
            consumer_sequence: number(t[4], "consumer sequence")?,
            timestamp,
            pending: number(t[6], "pending count")?,
        })
    }

    /// Parses a reply subject given as bytes (as it comes off the wire).
    pub fn parse_bytes(subject: &'a [u8]) -> Result<Self, AckParseError> {
        Self::parse(std::str::from_utf8(subject).map_err(|_| AckParseError::NotUtf8)?)
    }

    /// An owned copy, for keeping beyond the subject's lifetime.
    pub fn to_owned(&self) -> OwnedAckMetadata {
        OwnedAckMetadata {
            domain: self.domain.map(str::to_owned),
            account_hash: self.account_hash.map(str::to_owned),
            stream: self.stream.to_owned(),
            consumer: self.consumer.to_owned(),
            delivered: self.delivered,
            stream_sequence: self.stream_sequence,
            consumer_sequence: self.consumer_sequence,
            timestamp: self.timestamp,
            pending: self.pending,
        }
    }
}

/// [`AckMetadata`] with owned strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnedAckMetadata {
    /// The JetStream domain, if any.
    pub domain: Option<String>,
    /// The account hash (v2 subjects only).
    pub account_hash: Option<String>,
    /// The stream.
    pub stream: String,
    /// The consumer.
    pub consumer: String,
    /// How many times the message has been delivered.
    pub delivered: u64,
    /// The message's sequence in the stream.
    pub stream_sequence: u64,
    /// The delivery's sequence in the consumer.
    pub consumer_sequence: u64,
    /// When the message was stored.
    pub timestamp: SystemTime,
    /// How many messages the consumer had left after this one.
    pub pending: u64,
}

impl OwnedAckMetadata {
    /// Parses a reply subject into owned metadata.
    pub fn parse(subject: &str) -> Result<Self, AckParseError> {
        AckMetadata::parse(subject).map(|m| m.to_owned())
    }
}

/// ADR-15's rule for acking one message: nothing at all under ack policy `none`; after a terminal ack has
/// succeeded, nothing more; `+WPI` may repeat until then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckState {
    no_ack: bool,
    settled: bool,
}

impl AckState {
    /// A message of a consumer whose ack policy wants acks (`explicit` or `all`).
    pub fn new() -> Self {
        AckState::default()
    }

    /// A message of a consumer with ack policy `none`: every ack is skipped.
    pub fn no_ack() -> Self {
        AckState { no_ack: true, settled: false }
    }

    /// True when an ack should be sent now: acks are wanted and no terminal ack has succeeded yet.
    pub fn should_send(&self) -> bool {
        !self.no_ack && !self.settled
    }

    /// Records that `kind` was sent successfully (published, or confirmed for a double ack).
    pub fn succeeded(&mut self, kind: &AckKind) {
        if kind.is_terminal() {
            self.settled = true;
        }
    }

    /// True once a terminal ack succeeded.
    pub fn is_settled(&self) -> bool {
        self.settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u64 = 1_700_000_000_123_456_789;

    fn at(nanos: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)
    }

    #[test]
    fn payloads() {
        assert_eq!(&AckKind::Ack.payload()[..], b"+ACK");
        assert_eq!(&AckKind::Nak { delay: None }.payload()[..], b"-NAK");
        assert_eq!(
            &AckKind::Nak { delay: Some(Duration::from_millis(1500)) }.payload()[..],
            b"-NAK {\"delay\":1500000000}"
        );
        assert_eq!(&AckKind::Progress.payload()[..], b"+WPI");
        assert_eq!(&AckKind::Term { reason: None }.payload()[..], b"+TERM");
        assert_eq!(&AckKind::Term { reason: Some("bad input".into()) }.payload()[..], b"+TERM bad input");
        assert_eq!(&AckKind::Next { request: None }.payload()[..], b"+NXT");
        let next = AckKind::Next { request: Some(PullRequest { batch: 5, ..Default::default() }) };
        let body = next.payload();
        assert!(body.starts_with(b"+NXT {"), "{body:?}");
        let json: serde_json::Value = serde_json::from_slice(&body[5..]).unwrap();
        assert_eq!(json["batch"], 5);
    }

    #[test]
    fn v1() {
        let m = AckMetadata::parse("$JS.ACK.ORDERS.worker.2.120.98.1700000000123456789.4").unwrap();
        assert_eq!(
            m,
            AckMetadata {
                domain: None,
                account_hash: None,
                stream: "ORDERS",
                consumer: "worker",
                delivered: 2,
                stream_sequence: 120,
                consumer_sequence: 98,
                timestamp: at(TS),
                pending: 4,
            }
        );
    }

    #[test]
    fn v2_and_more() {
        let m = AckMetadata::parse("$JS.ACK.hub.ACCHASH.ORDERS.worker.1.120.98.1700000000123456789.0").unwrap();
        assert_eq!((m.domain, m.account_hash), (Some("hub"), Some("ACCHASH")));
        assert_eq!(
            (m.stream, m.consumer, m.delivered, m.stream_sequence, m.consumer_sequence),
            ("ORDERS", "worker", 1, 120, 98)
        );
        assert_eq!((m.timestamp, m.pending), (at(TS), 0));

        let m = AckMetadata::parse("$JS.ACK._.ACCHASH.S.C.1.2.3.1700000000123456789.4").unwrap();
        assert_eq!(m.domain, None);
        assert_eq!(m.account_hash, Some("ACCHASH"));

        let twelve = AckMetadata::parse("$JS.ACK._.A.S.C.1.2.3.1700000000123456789.4.random").unwrap();
        assert_eq!((twelve.stream, twelve.pending), ("S", 4));
        let more = AckMetadata::parse("$JS.ACK.d.A.S.C.1.2.3.1700000000123456789.4.x.y.z").unwrap();
        assert_eq!((more.domain, more.consumer_sequence), (Some("d"), 3));
    }

    #[test]
    fn rejects() {
        use AckParseError::*;
        let table = [
            ("", NotAckSubject),
            ("$JS.ACK", NotAckSubject),
            ("$JS.NAK.S.C.1.2.3.4.5", NotAckSubject),
            ("$js.ack.S.C.1.2.3.4.5", NotAckSubject),
            ("$JS.ACK.S.C.1.2.3.4", TokenCount(8)),
            ("$JS.ACK.d.S.C.1.2.3.4.5", TokenCount(10)),
            ("$JS.ACK.", TokenCount(3)),
            ("$JS.ACK.S.C.x.2.3.4.5", InvalidNumber("delivered count")),
            ("$JS.ACK.S.C.1.-2.3.4.5", InvalidNumber("stream sequence")),
            ("$JS.ACK.S.C.1.2.+3.4.5", InvalidNumber("consumer sequence")),
            ("$JS.ACK.S.C.1.2.3..5", InvalidNumber("timestamp")),
            ("$JS.ACK.S.C.1.2.3.4.99999999999999999999", InvalidNumber("pending count")),
            ("$JS.ACK..C.1.2.3.4.5", EmptyToken("stream")),
            ("$JS.ACK.S..1.2.3.4.5", EmptyToken("consumer")),
            ("$JS.ACK.d..S.C.1.2.3.4.5", EmptyToken("account hash")),
        ];
        for (subject, want) in table {
            assert_eq!(AckMetadata::parse(subject), Err(want), "{subject}");
        }
        assert_eq!(AckMetadata::parse_bytes(b"$JS.ACK.\xff.C.1.2.3.4.5"), Err(NotUtf8));
        assert!(!TokenCount(10).to_string().is_empty());
    }

    #[test]
    fn bytes_and_owned() {
        let subject = format!("$JS.ACK.S.C.1.2.3.{TS}.4");
        let borrowed = AckMetadata::parse_bytes(subject.as_bytes()).unwrap();
        let owned = OwnedAckMetadata::parse(&subject).unwrap();
        assert_eq!(owned, borrowed.to_owned());
        assert_eq!((owned.stream.as_str(), owned.consumer.as_str(), owned.domain), ("S", "C", None));
    }

    #[test]
    fn ack_state() {
        let mut s = AckState::new();
        assert!(s.should_send());
        // +WPI may repeat: it settles nothing.
        s.succeeded(&AckKind::Progress);
        s.succeeded(&AckKind::Progress);
        assert!(!s.is_settled());
        assert!(s.should_send());
        s.succeeded(&AckKind::Ack);
        assert!(s.is_settled());
        assert!(!s.should_send());

        for terminal in [
            AckKind::Nak { delay: Some(Duration::from_secs(1)) },
            AckKind::Term { reason: None },
            AckKind::Next { request: None },
        ] {
            let mut s = AckState::new();
            s.succeeded(&terminal);
            assert!(!s.should_send(), "{terminal:?}");
        }

        let mut none = AckState::no_ack();
        assert!(!none.should_send());
        none.succeeded(&AckKind::Progress);
        assert!(!none.should_send() && !none.is_settled());
        assert!(AckKind::Nak { delay: None }.is_terminal() && !AckKind::Progress.is_terminal());
    }

    #[test]
    fn huge_delay_saturates() {
        let body = AckKind::Nak { delay: Some(Duration::MAX) }.payload();
        assert_eq!(&body[..], format!("-NAK {{\"delay\":{}}}", u64::MAX).as_bytes());
    }
}
