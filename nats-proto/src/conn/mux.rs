//! The request/reply mux: one wildcard inbox subscription per connection, a token per request.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::fmt;

use bytes::{BufMut, BytesMut};

use crate::headers::StatusCode;
use crate::op::Msg;
use crate::subject::Subject;
use crate::time::Instant;

use super::timers::{Deadlines, Due};

/// Identifies a request made with [`crate::Connection::request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

/// Why a request produced no (more) replies.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// No reply before the deadline.
    Timeout,
    /// Nobody was subscribed to the subject (status 503).
    NoResponders,
    /// The connection was closed.
    Closed,
    /// The server refused the reply inbox subscription (a permissions violation).
    PermissionDenied(crate::error::ServerError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "request timed out",
            Self::NoResponders => "no responders",
            Self::Closed => "connection closed",
            Self::PermissionDenied(_) => "permission denied for the reply inbox",
        })
    }
}

impl core::error::Error for RequestError {}

#[derive(Debug)]
struct Pending {
    deadline: Option<Instant>,
    /// Takes several replies (request_many) rather than one.
    many: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Mux {
    /// The mux subscription's sid and the prefix of every reply subject (`<inbox>.<nuid>.`).
    sub: Option<(u64, BytesMut, Subject)>,
    pending: super::Ids<Pending>,
    last_token: u64,
}

/// What the mux made of a message.
pub(crate) enum Routed {
    /// A reply (or an error) for a request; `done` when the request is finished.
    Reply { id: RequestId, result: Result<Msg, RequestError>, done: bool },
    /// For a request that already ended: drop it.
    Stale,
}

impl Mux {
    /// The mux subscription, if one was made.
    pub(crate) fn sid(&self) -> Option<u64> {
        self.sub.as_ref().map(|(sid, _, _)| *sid)
    }

    /// The mux subscription's sid and wildcard subject, for replay after a reconnect.
    pub(crate) fn subscription(&self) -> Option<(u64, &Subject)> {
        self.sub.as_ref().map(|(sid, _, wildcard)| (*sid, wildcard))
    }

    /// Makes the mux subscription if there is none; returns its wildcard subject when it is new.
    pub(crate) fn ensure_sub(&mut self, sid: impl FnOnce() -> u64, inbox: &str) -> Option<(u64, Subject)> {
        if self.sub.is_some() {
            return None;
        }
        let sid = sid();
        let mut prefix = BytesMut::with_capacity(inbox.len() + 8);
        prefix.put_slice(inbox.as_bytes());
        prefix.put_u8(b'.');
        let mut wildcard = prefix.clone();
        wildcard.put_u8(b'*');
        let wildcard = Subject::from_bytes(wildcard.freeze());
        self.sub = Some((sid, prefix, wildcard.clone()));
        Some((sid, wildcard))
    }

    /// Registers a request (its deadline goes into the connection's table); returns its id and reply subject.
    pub(crate) fn start(
        &mut self,
        deadline: Option<Instant>,
        many: bool,
        deadlines: &mut Deadlines,
    ) -> (RequestId, Subject) {
        self.last_token += 1;
        let token = self.last_token;
        self.pending.insert(token, Pending { deadline, many });
        if let Some(d) = deadline {
            deadlines.insert(d, Due::Request(token));
        }
        // ensure_sub runs before start, so the prefix exists.
        let mut reply = self.sub.as_ref().map(|(_, p, _)| p.clone()).unwrap_or_default();
        reply.put_slice(token.to_string().as_bytes());
        (RequestId(token), Subject::from_bytes(reply.freeze()))
    }

    fn finish(&mut self, token: u64, deadlines: &mut Deadlines) -> bool {
        match self.pending.remove(&token) {
            Some(p) => {
                if let Some(d) = p.deadline {
                    deadlines.remove(d, Due::Request(token));
                }
                true
            }
            None => false,
        }
    }

    /// Forgets a request (cancelled by its caller). True if it was pending.
    pub(crate) fn cancel(&mut self, id: RequestId, deadlines: &mut Deadlines) -> bool {
        self.finish(id.0, deadlines)
    }

    /// Routes a message that arrived on the mux subscription.
    pub(crate) fn route(&mut self, msg: Msg, deadlines: &mut Deadlines) -> Routed {
        let prefix_len = self.sub.as_ref().map_or(0, |(_, p, _)| p.len());
        let token = msg.subject().as_bytes().get(prefix_len..).and_then(|t| core::str::from_utf8(t).ok()?.parse().ok());
        let Some((token, many)) = token.and_then(|t| Some((t, self.pending.get(&t)?.many))) else {
            return Routed::Stale;
        };
        let id = RequestId(token);
        if msg.status() == Some(StatusCode::NO_RESPONDERS) {
            self.finish(token, deadlines);
            return Routed::Reply { id, result: Err(RequestError::NoResponders), done: true };
        }
        if !many {
            self.finish(token, deadlines);
        }
        Routed::Reply { id, result: Ok(msg), done: !many }
    }

    /// The request's deadline was taken from the table as due: it ends. True if it was still pending.
    pub(crate) fn expire(&mut self, token: u64) -> bool {
        self.pending.remove(&token).is_some()
    }

    /// Forgets the subscription (the server refused it): the next request subscribes again.
    pub(crate) fn forget_sub(&mut self) {
        self.sub = None;
    }

    /// Ends every request (the connection closed).
    pub(crate) fn drain_all(&mut self, deadlines: &mut Deadlines) -> Vec<RequestId> {
        let mut ids: Vec<RequestId> = core::mem::take(&mut self.pending)
            .into_iter()
            .map(|(t, p)| {
                if let Some(d) = p.deadline {
                    deadlines.remove(d, Due::Request(t));
                }
                RequestId(t)
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }
}
