//! Telling user messages from control messages on a pull (or push) subscription.
//!
//! The server speaks to a consumer's subscription with HMSGs whose header block starts `NATS/1.0 <code> <text>`
//! and whose body is empty. [`classify`] turns one received message into [`Kind::User`] or a typed
//! [`Control`], matching on the status code first and on the description second (a case-insensitive substring,
//! as every client does for the 409s). A status this module does not know is [`Control::Unknown`], which is an
//! error, never a message to hand to the user.
//!
//! ```
//! use nats_jetstream::status::{classify, Control, Kind};
//! use nats_proto::StatusCode;
//!
//! let kind = classify(StatusCode::new(409), "Consumer Deleted", None, 0);
//! assert_eq!(kind, Kind::Control(Control::ConsumerDeleted));
//! assert!(kind.control().is_some_and(Control::is_terminal));
//! // A payload makes it a user message whatever the status says.
//! assert_eq!(classify(StatusCode::new(408), "Request Timeout", None, 3), Kind::User);
//! assert_eq!(classify(None, "", None, 0), Kind::User);
//! ```

use bytes::Bytes;
use nats_proto::{HeaderView, Msg, StatusCode};

/// Header carrying how many messages of a pull request were left unserved.
pub const PENDING_MESSAGES: &str = "Nats-Pending-Messages";
/// Header carrying how many bytes of a pull request were left unserved.
pub const PENDING_BYTES: &str = "Nats-Pending-Bytes";

/// What a received message needs of the JetStream layer: read access to its parts.
///
/// Implemented for [`nats_proto::Msg`]; a client binding implements it for its own message type (or a wrapper
/// around it) so that [`crate::pull::PullConsumer`] can hold and hand back its messages unchanged.
pub trait Incoming {
    /// The subject the message was published to (for a JetStream delivery: the stream subject).
    fn subject(&self) -> &[u8];
    /// The reply subject (for a JetStream delivery: the `$JS.ACK...` subject).
    fn reply(&self) -> Option<&[u8]>;
    /// The header block, if any.
    fn headers(&self) -> Option<HeaderView<'_>>;
    /// The payload.
    fn payload(&self) -> &[u8];

    /// The reply subject as `Bytes` (copied unless the implementation can share it).
    fn reply_bytes(&self) -> Option<Bytes> {
        self.reply().map(Bytes::copy_from_slice)
    }

    /// The message's size as the server counts it against a pull's `max_bytes`:
    /// subject + reply + header block + payload.
    fn wire_size(&self) -> u64 {
        let size = self.subject().len()
            + self.reply().map_or(0, <[u8]>::len)
            + self.headers().map_or(0, |h| h.as_bytes().len())
            + self.payload().len();
        size as u64
    }

    /// This message classified (see [`classify`]); a flow-control request carries the message's reply subject.
    fn classify(&self) -> Kind {
        let headers = self.headers();
        let status = headers.and_then(HeaderView::status);
        let description = headers.map_or("", HeaderView::description);
        match classify(status, description, headers, self.payload().len()) {
            Kind::Control(Control::FlowControl { .. }) => {
                Kind::Control(Control::FlowControl { reply: self.reply_bytes() })
            }
            other => other,
        }
    }
}

impl Incoming for Msg {
    fn subject(&self) -> &[u8] {
        self.subject().as_bytes()
    }

    fn reply(&self) -> Option<&[u8]> {
        self.reply().map(|r| r.as_bytes())
    }

    fn headers(&self) -> Option<HeaderView<'_>> {
        self.headers()
    }

    fn payload(&self) -> &[u8] {
        self.payload()
    }

    fn reply_bytes(&self) -> Option<Bytes> {
        Msg::reply_bytes(self)
    }
}

/// A client's message, as both bindings hand it to the pull and ordered machines.
impl Incoming for nats_client::Message {
    fn subject(&self) -> &[u8] {
        Incoming::subject(&**self)
    }

    fn reply(&self) -> Option<&[u8]> {
        Incoming::reply(&**self)
    }

    fn headers(&self) -> Option<HeaderView<'_>> {
        Msg::headers(self)
    }

    fn payload(&self) -> &[u8] {
        Msg::payload(self)
    }

    fn reply_bytes(&self) -> Option<Bytes> {
        Msg::reply_bytes(self)
    }
}

/// The unserved part of a pull request, from the `Nats-Pending-Messages` and `Nats-Pending-Bytes` headers of
/// a 408, 409 or 423 status (0 when a header is absent or unreadable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Pending {
    /// Messages the request still had room for.
    pub messages: u64,
    /// Bytes the request still had room for.
    pub bytes: u64,
}

impl Pending {
    /// Reads the two headers from `headers`.
    pub fn from_headers(headers: Option<HeaderView<'_>>) -> Self {
        let read = |name: &str| headers.and_then(|h| h.get(name)).and_then(|v| v.trim().parse::<u64>().ok());
        Pending { messages: read(PENDING_MESSAGES).unwrap_or(0), bytes: read(PENDING_BYTES).unwrap_or(0) }
    }

    /// True when neither count is set.
    pub fn is_empty(&self) -> bool {
        self.messages == 0 && self.bytes == 0
    }
}

/// A limit of the consumer that a pull request exceeded (`409 Exceeded ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The request's batch is over the consumer's `max_batch`.
    MaxRequestBatch,
    /// The request's expiry is over the consumer's `max_expires`.
    MaxRequestExpires,
    /// The request's `max_bytes` is over the consumer's `max_bytes`.
    MaxRequestMaxBytes,
    /// The consumer already has `max_waiting` requests queued.
    MaxWaiting,
}

/// A control (status) message, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// `100 Idle Heartbeat`: the server is alive; reset the heartbeat timer.
    IdleHeartbeat,
    /// `100 FlowControl Request` (push consumers): answer `reply` once with an empty message. [`classify`] cannot
    /// see the reply subject and leaves it `None`; [`Incoming::classify`] fills it in.
    FlowControl {
        /// Where to send the empty answer.
        reply: Option<Bytes>,
    },
    /// `404 No Messages`: a `no_wait` request found nothing (more).
    NoMessages,
    /// `408 Request Timeout`: the pull expired.
    RequestTimeout {
        /// What the request left unserved.
        pending: Pending,
    },
    /// `408 Interest Expired`: the server lost interest in the reply subject.
    InterestExpired {
        /// What the request left unserved.
        pending: Pending,
    },
    /// `408 Requests Pending`: a `no_wait` request found every pending message claimed by earlier pulls.
    RequestsPending {
        /// What the request left unserved.
        pending: Pending,
    },
    /// `409 Message Size Exceeds MaxBytes`: the next message would not fit the request's bytes.
    MessageSizeExceedsMaxBytes {
        /// What the request left unserved.
        pending: Pending,
    },
    /// `409 Batch Completed`: the batch filled with bytes left over.
    BatchCompleted {
        /// What the request left unserved.
        pending: Pending,
    },
    /// `409 Exceeded ...`: the request went over a limit of the consumer and was refused (a warning).
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The server's text (it may name the limit's value).
        description: String,
    },
    /// `409 Consumer Deleted`: terminal.
    ConsumerDeleted,
    /// `409 Consumer is push based`: terminal.
    ConsumerIsPushBased,
    /// `409 Leadership Change`: the pull was cancelled; pull again.
    LeadershipChange {
        /// What the request left unserved (may be empty).
        pending: Pending,
    },
    /// `409 Server Shutdown`: the pull was cancelled; pull again.
    ServerShutdown {
        /// What the request left unserved (may be empty).
        pending: Pending,
    },
    /// `400 Bad Request - ...`: the pull request was malformed (bad group, priority, heartbeat).
    BadRequest {
        /// The server's text.
        description: String,
    },
    /// `423 Nats-Pin-Id mismatch` / `423 Nats-Wrong-Pin-Id`: clear the pin id and pull again.
    PinIdMismatch {
        /// What the request left unserved (may be empty).
        pending: Pending,
    },
    /// `412 Required Api Level`: the server is older than the request demands.
    RequiredApiLevel {
        /// The server's text.
        description: String,
    },
    /// `503`: no responders (stream or consumer gone, JetStream down).
    NoResponders,
    /// Any other status: an error, never a user message.
    Unknown {
        /// The status code.
        code: u16,
        /// The server's text.
        description: String,
    },
}

impl Control {
    /// The status's text: the server's own where it was kept, else the standard one.
    pub fn description(&self) -> &str {
        match self {
            Control::IdleHeartbeat => "Idle Heartbeat",
            Control::FlowControl { .. } => "FlowControl Request",
            Control::NoMessages => "No Messages",
            Control::RequestTimeout { .. } => "Request Timeout",
            Control::InterestExpired { .. } => "Interest Expired",
            Control::RequestsPending { .. } => "Requests Pending",
            Control::MessageSizeExceedsMaxBytes { .. } => "Message Size Exceeds MaxBytes",
            Control::BatchCompleted { .. } => "Batch Completed",
            Control::ConsumerDeleted => "Consumer Deleted",
            Control::ConsumerIsPushBased => "Consumer is push based",
            Control::LeadershipChange { .. } => "Leadership Change",
            Control::ServerShutdown { .. } => "Server Shutdown",
            Control::PinIdMismatch { .. } => "Nats-Pin-Id mismatch",
            Control::NoResponders => "No Responders",
            Control::LimitExceeded { description, .. }
            | Control::BadRequest { description }
            | Control::RequiredApiLevel { description }
            | Control::Unknown { description, .. } => description,
        }
    }

    /// The status code this kind of message carries.
    pub fn code(&self) -> u16 {
        match self {
            Control::IdleHeartbeat | Control::FlowControl { .. } => 100,
            Control::NoMessages => 404,
            Control::RequestTimeout { .. } | Control::InterestExpired { .. } | Control::RequestsPending { .. } => 408,
            Control::MessageSizeExceedsMaxBytes { .. }
            | Control::BatchCompleted { .. }
            | Control::LimitExceeded { .. }
            | Control::ConsumerDeleted
            | Control::ConsumerIsPushBased
            | Control::LeadershipChange { .. }
            | Control::ServerShutdown { .. } => 409,
            Control::BadRequest { .. } => 400,
            Control::PinIdMismatch { .. } => 423,
            Control::RequiredApiLevel { .. } => 412,
            Control::NoResponders => 503,
            Control::Unknown { code, .. } => *code,
        }
    }

    /// What the pull request left unserved, for the statuses that report it (empty otherwise).
    pub fn pending(&self) -> Pending {
        match self {
            Control::RequestTimeout { pending }
            | Control::InterestExpired { pending }
            | Control::RequestsPending { pending }
            | Control::MessageSizeExceedsMaxBytes { pending }
            | Control::BatchCompleted { pending }
            | Control::LeadershipChange { pending }
            | Control::ServerShutdown { pending }
            | Control::PinIdMismatch { pending } => *pending,
            _ => Pending::default(),
        }
    }

    /// True for `409 Consumer Deleted` and `409 Consumer is push based`: a continuous consume ends.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Control::ConsumerDeleted | Control::ConsumerIsPushBased)
    }

    /// True for the statuses to report as errors: 400, 412, 503 and unknown ones.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Control::BadRequest { .. }
                | Control::RequiredApiLevel { .. }
                | Control::NoResponders
                | Control::Unknown { .. }
        )
    }

    /// True for the limit warnings (`409 Exceeded ...`).
    pub fn is_warning(&self) -> bool {
        matches!(self, Control::LimitExceeded { .. })
    }

    /// True for statuses that end the pull request they answer (everything but heartbeats and flow control).
    pub fn ends_request(&self) -> bool {
        !matches!(self, Control::IdleHeartbeat | Control::FlowControl { .. })
    }
}

/// A received message, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A message for the user.
    User,
    /// A control message for the consumer's machinery.
    Control(Control),
}

impl Kind {
    /// The control message, if this is one.
    pub fn control(&self) -> Option<&Control> {
        match self {
            Kind::User => None,
            Kind::Control(c) => Some(c),
        }
    }
}

/// True when `needle` occurs in `haystack`, ignoring ASCII case. Allocates nothing.
pub(crate) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Classifies a received message from its status line, headers and payload length.
///
/// A message with a payload, or without a status, is [`Kind::User`]. Otherwise the code picks the family and
/// the description (case-insensitive substring) the kind; unknown pairs are [`Control::Unknown`].
pub fn classify(
    status: Option<StatusCode>,
    description: &str,
    headers: Option<HeaderView<'_>>,
    payload_len: usize,
) -> Kind {
    let Some(status) = status else { return Kind::User };
    if payload_len > 0 {
        return Kind::User;
    }
    let has = |needle: &str| contains_ignore_case(description, needle);
    let pending = || Pending::from_headers(headers);
    let unknown = || Control::Unknown { code: status.as_u16(), description: description.to_owned() };
    let control = match status.as_u16() {
        100 if has("flowcontrol") || has("flow control") => Control::FlowControl { reply: None },
        100 => Control::IdleHeartbeat,
        404 => Control::NoMessages,
        408 if has("interest expired") => Control::InterestExpired { pending: pending() },
        408 if has("requests pending") => Control::RequestsPending { pending: pending() },
        408 => Control::RequestTimeout { pending: pending() },
        409 if has("consumer deleted") => Control::ConsumerDeleted,
        409 if has("push based") => Control::ConsumerIsPushBased,
        409 if has("message size exceeds maxbytes") => Control::MessageSizeExceedsMaxBytes { pending: pending() },
        409 if has("batch completed") => Control::BatchCompleted { pending: pending() },
        409 if has("leadership change") => Control::LeadershipChange { pending: pending() },
        409 if has("server shutdown") => Control::ServerShutdown { pending: pending() },
        409 if has("exceeded") => {
            // Longest names first: "MaxRequestMaxBytes" contains "MaxBytes", "MaxRequestExpires" ...
            let limit = if has("maxrequestbatch") {
                Limit::MaxRequestBatch
            } else if has("maxrequestexpires") {
                Limit::MaxRequestExpires
            } else if has("maxrequestmaxbytes") {
                Limit::MaxRequestMaxBytes
            } else if has("maxwaiting") {
                Limit::MaxWaiting
            } else {
                return Kind::Control(unknown());
            };
            Control::LimitExceeded { limit, description: description.to_owned() }
        }
        400 => Control::BadRequest { description: description.to_owned() },
        412 => Control::RequiredApiLevel { description: description.to_owned() },
        423 => Control::PinIdMismatch { pending: pending() },
        503 => Control::NoResponders,
        _ => unknown(),
    };
    Kind::Control(control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_proto::Subject;

    fn block(text: &str) -> nats_proto::HeaderBlock {
        nats_proto::HeaderBlock::parse(Bytes::copy_from_slice(text.as_bytes())).expect("valid block")
    }

    fn status_msg(line: &str, extra: &str, payload: &'static [u8]) -> Msg {
        Msg::new(
            Subject::from_bytes(Bytes::from_static(b"_INBOX.x")),
            1,
            (Some(Subject::from_bytes(Bytes::from_static(b"$JS.FC.s.c.1")))).as_ref().map(|r| r.as_bytes()),
            (Some(block(&format!("NATS/1.0 {line}\r\n{extra}\r\n")))).as_ref(),
            Bytes::from_static(payload),
        )
    }

    #[test]
    fn table() {
        let p = Pending { messages: 3, bytes: 40 };
        let cases: Vec<(&str, Control)> = vec![
            ("100 Idle Heartbeat", Control::IdleHeartbeat),
            ("100", Control::IdleHeartbeat),
            ("404 No Messages", Control::NoMessages),
            ("408 Request Timeout", Control::RequestTimeout { pending: p }),
            ("408 Interest Expired", Control::InterestExpired { pending: p }),
            ("408 Requests Pending", Control::RequestsPending { pending: p }),
            ("409 Message Size Exceeds MaxBytes", Control::MessageSizeExceedsMaxBytes { pending: p }),
            ("409 Batch Completed", Control::BatchCompleted { pending: p }),
            (
                "409 Exceeded MaxRequestBatch of 100",
                Control::LimitExceeded {
                    limit: Limit::MaxRequestBatch,
                    description: "Exceeded MaxRequestBatch of 100".into(),
                },
            ),
            (
                "409 Exceeded MaxRequestExpires of 1s",
                Control::LimitExceeded {
                    limit: Limit::MaxRequestExpires,
                    description: "Exceeded MaxRequestExpires of 1s".into(),
                },
            ),
            (
                "409 Exceeded MaxRequestMaxBytes of 10",
                Control::LimitExceeded {
                    limit: Limit::MaxRequestMaxBytes,
                    description: "Exceeded MaxRequestMaxBytes of 10".into(),
                },
            ),
            (
                "409 Exceeded MaxWaiting",
                Control::LimitExceeded { limit: Limit::MaxWaiting, description: "Exceeded MaxWaiting".into() },
            ),
            ("409 Consumer Deleted", Control::ConsumerDeleted),
            ("409 Consumer is push based", Control::ConsumerIsPushBased),
            ("409 Leadership Change", Control::LeadershipChange { pending: p }),
            ("409 Server Shutdown", Control::ServerShutdown { pending: p }),
            (
                "400 Bad Request - heartbeat value too large",
                Control::BadRequest { description: "Bad Request - heartbeat value too large".into() },
            ),
            ("423 Nats-Pin-Id mismatch", Control::PinIdMismatch { pending: p }),
            ("423 Nats-Wrong-Pin-Id", Control::PinIdMismatch { pending: p }),
            ("412 Required Api Level", Control::RequiredApiLevel { description: "Required Api Level".into() }),
            ("503", Control::NoResponders),
            ("409 Something New", Control::Unknown { code: 409, description: "Something New".into() }),
            ("409 Exceeded MaxSomething", Control::Unknown { code: 409, description: "Exceeded MaxSomething".into() }),
            ("418 Teapot", Control::Unknown { code: 418, description: "Teapot".into() }),
        ];
        let extra = "Nats-Pending-Messages: 3\r\nNats-Pending-Bytes: 40\r\n";
        for (line, want) in cases {
            let msg = status_msg(line, extra, b"");
            assert_eq!(msg.classify(), Kind::Control(want.clone()), "{line}");
            let code = line[..3].parse::<u16>().unwrap();
            assert_eq!(want.code(), code, "{line}");
        }
    }

    #[test]
    fn description_matching_ignores_case() {
        assert_eq!(
            classify(StatusCode::new(409), "CONSUMER DELETED", None, 0),
            Kind::Control(Control::ConsumerDeleted)
        );
        assert_eq!(
            classify(StatusCode::new(409), "message size exceeds maxbytes", None, 0),
            Kind::Control(Control::MessageSizeExceedsMaxBytes { pending: Pending::default() })
        );
        assert!(contains_ignore_case("abc", ""));
        assert!(!contains_ignore_case("ab", "abc"));
    }

    #[test]
    fn user_messages() {
        assert_eq!(classify(None, "", None, 0), Kind::User);
        assert_eq!(classify(None, "", None, 10), Kind::User);
        // A status with a payload is a user message (the rule of §3.2).
        assert_eq!(classify(StatusCode::new(100), "Idle Heartbeat", None, 1), Kind::User);
        let msg = status_msg("404 No Messages", "", b"data");
        assert_eq!(msg.classify(), Kind::User);
    }

    #[test]
    fn flow_control_carries_reply() {
        let msg = status_msg("100 FlowControl Request", "", b"");
        assert_eq!(
            msg.classify(),
            Kind::Control(Control::FlowControl { reply: Some(Bytes::from_static(b"$JS.FC.s.c.1")) })
        );
        assert_eq!(
            classify(StatusCode::new(100), "FlowControl Request", None, 0),
            Kind::Control(Control::FlowControl { reply: None })
        );
    }

    #[test]
    fn pending_headers() {
        let b = block("NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 7\r\nNats-Pending-Bytes: x\r\n\r\n");
        assert_eq!(Pending::from_headers(Some(b.view())), Pending { messages: 7, bytes: 0 });
        assert!(Pending::from_headers(None).is_empty());
        assert!(!Pending { messages: 0, bytes: 1 }.is_empty());
    }

    #[test]
    fn predicates() {
        assert!(Control::ConsumerDeleted.is_terminal());
        assert!(!Control::LeadershipChange { pending: Pending::default() }.is_terminal());
        assert!(Control::NoResponders.is_error());
        assert!(Control::Unknown { code: 1, description: String::new() }.is_error());
        assert!(!Control::NoMessages.is_error());
        assert!(Control::LimitExceeded { limit: Limit::MaxWaiting, description: String::new() }.is_warning());
        assert!(!Control::IdleHeartbeat.ends_request());
        assert!(Control::NoMessages.ends_request());
        assert_eq!(Control::BatchCompleted { pending: Pending { messages: 1, bytes: 2 } }.pending().bytes, 2);
        assert!(Control::NoMessages.pending().is_empty());
        assert_eq!(Kind::User.control(), None);
    }

    #[test]
    fn wire_size_counts_subject_reply_headers_payload() {
        let msg = Msg::new(
            Subject::from_bytes(Bytes::from_static(b"orders.1")),
            9,
            (Some(Subject::from_bytes(Bytes::from_static(b"$JS.ACK.S.C.1.1.1.1.0")))).as_ref().map(|r| r.as_bytes()),
            (Some(block("NATS/1.0\r\nA: b\r\n\r\n"))).as_ref(),
            Bytes::from_static(b"hello"),
        );
        let want = 8 + 21 + "NATS/1.0\r\nA: b\r\n\r\n".len() + 5;
        assert_eq!(msg.wire_size(), want as u64);
    }
}
