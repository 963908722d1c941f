//! Every state transition of [`Connection`], in one place: the inputs and what they do.
//!
//! ```text
//! Disconnected --timer--> Dialing --handle_connected--> AwaitInfo --INFO--> [AwaitTls] --> [AwaitCredentials]
//!                                                                                 --> AwaitPong
//!      ^                                                                                      |
//!      |  (eof, parse error, fatal -ERR, stale, connect timeout)                           PONG
//!      +------------------------------------------------------- Connected <------------------+
//!                                                                 | drain
//!                                                               Draining --fence+requests done--> Closed
//! ```

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::BytesMut;

use super::mux::{RequestError, RequestId, Routed};
use super::pool::backoff;
use super::subs::Delivery;
use super::timers::{after, Due, Timer};
use super::{
    Action, CloseReason, Connection, Credentials, Deliver, Event, FlushError, FlushId, NoSink, PingPurpose, State,
    SubscriptionEnd,
};
use crate::error::{ConnectionError, PermissionOp, ServerError};
use crate::info::{ConnectInfo, ServerInfo};
use crate::op::{Msg, ServerOp};
use crate::time::Instant;

impl Connection {
    // ---- inputs ----

    /// The driver opened the transport asked for by [`Action::Dial`].
    pub fn handle_connected(&mut self, _now: Instant) {
        if self.state != State::Dialing {
            return;
        }
        self.input_seen = 0;
        // Over WebSocket the driver has done whatever TLS the scheme asks (`wss`) before the upgrade.
        if let Some(addr) = self.pool.current().filter(|a| a.is_websocket()) {
            self.tls_active = addr.tls_required();
            self.state = State::AwaitInfo;
            return;
        }
        if self.config.tls_first {
            self.state = State::AwaitTls;
            if let Some(addr) = self.pool.current().cloned() {
                self.actions.push_back(Action::StartTls(addr));
            }
        } else {
            self.state = State::AwaitInfo;
        }
    }

    /// The driver finished the TLS handshake asked for by [`Action::StartTls`].
    pub fn handle_tls_ready(&mut self, _now: Instant) {
        if self.state != State::AwaitTls {
            return;
        }
        self.tls_active = true;
        if self.config.tls_first && !self.attempt_info {
            self.state = State::AwaitInfo;
        } else {
            self.send_connect();
        }
    }

    /// Bytes read from the transport (copied in). Messages for subscriptions become [`Event::Message`]s;
    /// drivers that hand them straight to subscribers use [`handle_read`](Self::handle_read) instead.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        let mut input = core::mem::take(&mut self.input);
        input.extend_from_slice(data);
        self.decode(now, &mut input, None::<&mut NoSink>);
        self.input = input;
    }

    /// Bytes the driver read into its own `buf`, appended since the last call; what a call leaves in `buf` is
    /// the start of an op still arriving. Complete ops are cut from the front of `buf` without copying, and
    /// each message for a subscription goes to `sink` the moment it is decoded: no event, no queue between
    /// the read buffer and the subscriber. Everything else becomes events as usual.
    ///
    /// Before each read, make room in `buf` for at least the rest of a frame of up to 64 KiB
    /// ([`ReadBuffer::make_room`](crate::conn::read_buffer::ReadBuffer::make_room) does, reusing memory): the
    /// decoder reserves room itself only for larger frames. Clear `buf` whenever a new transport is connected:
    /// its bytes belong to one stream.
    pub fn handle_read<D: Deliver + ?Sized>(&mut self, now: Instant, buf: &mut BytesMut, sink: &mut D) {
        self.decode(now, buf, Some(sink));
    }

    /// The decoding loop behind both inputs: `sink` takes subscription messages, or events do.
    fn decode<D: Deliver + ?Sized>(&mut self, now: Instant, input: &mut BytesMut, mut sink: Option<&mut D>) {
        self.stats.in_bytes += input.len().saturating_sub(self.input_seen) as u64;
        loop {
            if matches!(self.state, State::Disconnected | State::Dialing | State::Closed) {
                // Bytes from a transport we already gave up on (and messages cut from them ahead).
                input.clear();
                self.decoder.reset();
                break;
            }
            match self.decoder.decode(input) {
                Ok(Some(ServerOp::Msg(m))) if self.is_connected() => {
                    let Some((msg, last)) = self.accept_msg(m) else { continue };
                    let sid = msg.sid();
                    match sink.as_deref_mut() {
                        Some(sink) => sink.deliver(msg),
                        None => self.events.push_back(Event::Message(msg)),
                    }
                    if last {
                        self.events.push_back(Event::SubscriptionEnded { sid, reason: SubscriptionEnd::MaxReached });
                    }
                }
                Ok(Some(op)) => self.handle_op(now, op),
                Ok(None) => break,
                Err(e) if e.is_frame_local() && self.state != State::AwaitInfo => {
                    self.events.push_back(Event::BadMessage(e));
                    // Only a ready connection delivers (and counts) messages; before that nothing is for us.
                    if let Some(sid) = self.decoder.skipped_sid().filter(|_| self.is_connected()) {
                        self.count_undeliverable(sid);
                    }
                }
                Err(e) => self.lose(now, ConnectionError::Parse(e)),
            }
        }
        self.input_seen = input.len();
    }

    /// The transport ended (end of stream, an I/O error, or a failed dial).
    pub fn handle_eof(&mut self, now: Instant) {
        self.lose(now, ConnectionError::TransportClosed);
    }

    /// The transport failed for a reason the driver knows better than "closed" (a TLS handshake error, a
    /// feature this build lacks): the attempt fails with `error`.
    pub fn handle_transport_error(&mut self, now: Instant, error: ConnectionError) {
        self.lose(now, error);
    }

    /// Time passed: fires whatever is due at `now`, from one table of deadlines, in a fixed order of their kinds.
    pub fn handle_timeout(&mut self, now: Instant) {
        for due in self.timers.take_due(now) {
            if self.state == State::Closed {
                // Closed by what was due before: every flush and request has already ended.
                break;
            }
            match due {
                Due::Timer(Timer::Connect) => self.lose(now, ConnectionError::ConnectTimeout),
                Due::Timer(Timer::Reconnect) => self.dial_next(now),
                Due::Timer(Timer::Ping) => {
                    if self.keepalive_out >= self.config.max_pings_out {
                        self.lose(now, ConnectionError::StaleConnection);
                    } else {
                        self.out.push_ping();
                        self.pings.push_back(PingPurpose::KeepAlive);
                        self.keepalive_out += 1;
                        self.timers.set(Timer::Ping, after(now, self.config.ping_interval));
                    }
                }
                Due::Flush(id) => {
                    if self.flushes.remove(&id).is_some() {
                        self.events.push_back(Event::Flushed { id: FlushId(id), result: Err(FlushError::Timeout) });
                    }
                }
                Due::Request(token) => {
                    if self.mux.expire(token) {
                        let id = RequestId(token);
                        self.events.push_back(Event::Response { id, result: Err(RequestError::Timeout), done: true });
                    }
                }
                Due::Timer(Timer::Drain) => self.finish_close(CloseReason::DrainTimedOut),
            }
        }
        self.maybe_finish_drain();
    }

    // ---- transitions ----

    pub(super) fn dial_next(&mut self, now: Instant) {
        let Some(addr) = self.pool.next_server().cloned() else {
            self.finish_close(CloseReason::ReconnectsExhausted(ConnectionError::TransportClosed));
            return;
        };
        self.state = State::Dialing;
        self.attempt_info = false;
        self.timers.set(Timer::Connect, after(now, self.config.connect_timeout));
        self.actions.push_back(Action::Dial(addr));
    }

    fn handle_op(&mut self, now: Instant, op: ServerOp) {
        match (self.state, op) {
            // Nothing may be written while the driver runs the TLS handshake on the socket.
            (State::AwaitTls, ServerOp::Ping) => {}
            (_, ServerOp::Ping) => self.out.push_pong(),
            (State::AwaitInfo, ServerOp::Info(info)) => self.on_first_info(now, *info),
            (State::AwaitInfo, _) => self.lose(now, ConnectionError::ExpectedInfo),
            (_, ServerOp::Info(info)) => self.on_info(*info),
            (State::AwaitPong, ServerOp::Pong) => self.on_handshake_done(now),
            (_, ServerOp::Pong) => self.on_pong(),
            (_, ServerOp::Ok) => {}
            (_, ServerOp::Err(e)) => self.on_server_error(now, e),
            // Messages of a ready connection are taken by `decode`; one before the handshake finished cannot
            // be for us.
            (_, ServerOp::Msg(_)) => {}
        }
    }

    /// Applies what every INFO carries: payload limit, discovered servers, lame duck mode.
    fn on_info(&mut self, info: ServerInfo) {
        // Messages published through another server of the cluster may exceed this server's own limit, so the
        // inbound cap is the larger of the two.
        self.decoder.set_max_payload(info.max_payload.max(self.config.limits.max_payload));
        if !self.config.ignore_discovered_servers
            && !info.connect_urls.is_empty()
            && self.pool.update_discovered(&info.connect_urls, &mut self.rng)
        {
            self.events.push_back(Event::DiscoveredServers);
        }
        if info.lame_duck_mode {
            self.events.push_back(Event::LameDuck);
        }
        self.info = Some(info);
    }

    fn on_first_info(&mut self, now: Instant, info: ServerInfo) {
        let wants_tls = self.config.require_tls || self.pool.current().is_some_and(|a| a.tls_required());
        let offers_tls = info.tls_required || info.tls_available || info.tls_verify;
        if self.config.no_echo && info.proto < 1 {
            self.lose(now, ConnectionError::Incompatible("no_echo needs server protocol 1"));
            return;
        }
        if self.pool.current().is_some_and(|a| a.is_websocket()) {
            // INFO's TLS flags describe the server's NATS port; a WebSocket's TLS is its scheme's (`wss`),
            // already in place, and no upgrade can follow the WebSocket one.
            if self.config.require_tls && !self.tls_active {
                self.lose(now, ConnectionError::TlsUnavailable);
                return;
            }
            self.on_info(info);
            self.attempt_info = true;
            self.send_connect();
            return;
        }
        let needs_tls = (wants_tls || info.tls_required) && !self.tls_active;
        if needs_tls && wants_tls && !offers_tls {
            self.lose(now, ConnectionError::TlsUnavailable);
            return;
        }
        self.on_info(info);
        self.attempt_info = true;
        if needs_tls {
            self.state = State::AwaitTls;
            if let Some(addr) = self.pool.current().cloned() {
                self.actions.push_back(Action::StartTls(addr));
            }
        } else {
            self.send_connect();
        }
    }

    /// Sends CONNECT + PING, or first asks the driver for credentials when a callback makes them.
    fn send_connect(&mut self) {
        if self.config.auth.callback.is_some() {
            let nonce = self.info.as_ref().and_then(|i| i.nonce.clone());
            self.state = State::AwaitCredentials;
            self.credentials_asked += 1;
            self.actions.push_back(Action::Credentials { nonce, ask: self.credentials_asked });
            return;
        }
        let connect = self.connect_info();
        self.finish_connect(connect);
    }

    /// The credentials asked for by [`Action::Credentials`] number `ask`, as the configured callback made
    /// them. Ignored unless the connection waits for exactly that ask (an answer for an attempt given up
    /// meanwhile, signed over another nonce, must not be sent).
    pub fn handle_credentials(&mut self, now: Instant, ask: u64, credentials: Result<Credentials, String>) {
        if self.state != State::AwaitCredentials || ask != self.credentials_asked {
            return;
        }
        match credentials {
            Ok(c) => {
                let mut connect = self.connect_info();
                connect.user = c.user.or(connect.user);
                connect.pass = c.pass.or(connect.pass);
                connect.auth_token = c.token.or(connect.auth_token);
                connect.jwt = c.jwt;
                connect.nkey = c.nkey;
                connect.sig = c.sig;
                self.finish_connect(connect);
            }
            Err(why) => self.lose(now, ConnectionError::Credentials(why)),
        }
    }

    /// CONNECT's fields from the configuration, the server URL and the server's INFO.
    fn connect_info(&self) -> ConnectInfo {
        let headers = self.info.as_ref().is_some_and(|i| i.headers);
        let mut connect = ConnectInfo::new();
        connect.tls_required = self.tls_active;
        connect.name = self.config.name.clone();
        connect.echo = !self.config.no_echo;
        connect.headers = headers;
        connect.no_responders = headers;
        let url = self.pool.current();
        if let Some((user, pass)) = url.and_then(|a| a.user_password()).or(self
            .config
            .auth
            .user_password
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str())))
        {
            connect.user = Some(user.to_owned());
            connect.pass = Some(pass.to_owned());
        }
        connect.auth_token = url.and_then(|a| a.token()).map(str::to_owned).or_else(|| self.config.auth.token.clone());
        connect
    }

    fn finish_connect(&mut self, connect: ConnectInfo) {
        self.out.push_connect(&connect);
        self.out.push_ping();
        self.state = State::AwaitPong;
    }

    fn on_handshake_done(&mut self, now: Instant) {
        self.state = State::Connected;
        self.timers.clear(Timer::Connect);
        self.pool.record_success();
        self.failures = 0;
        self.stats.connects += 1;
        if let Some(addr) = self.pool.current().cloned() {
            self.events.push_back(if self.ever_connected {
                self.stats.reconnects += 1;
                Event::Reconnected(addr)
            } else {
                Event::Connected(addr)
            });
        }
        self.ever_connected = true;
        // Subscriptions first (so replies to buffered requests have somewhere to go), then the buffer.
        self.subs.replay(&mut self.out);
        if let Some((sid, wildcard)) = self.mux.subscription() {
            self.out.push_sub(wildcard.as_bytes(), None, sid);
        }
        self.out.append(&mut self.pending);
        self.pings.extend(self.unsent_fences.drain(..).map(PingPurpose::Fence));
        self.keepalive_out = 0;
        self.timers.set(Timer::Ping, after(now, self.config.ping_interval));
        if self.drain_requested {
            self.start_drain();
        }
    }

    fn on_pong(&mut self) {
        // Any PONG proves the server alive.
        self.keepalive_out = 0;
        match self.pings.pop_front() {
            Some(PingPurpose::Fence(id)) => {
                if self.end_flush(id) {
                    self.events.push_back(Event::Flushed { id: FlushId(id), result: Ok(()) });
                }
            }
            Some(PingPurpose::Drain) => {
                // The server processed every UNSUB: whatever it sent for those subscriptions came before this.
                for sid in self.subs.sids() {
                    self.subs.remove(sid);
                    self.events.push_back(Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Drained });
                }
                self.drain_fenced = true;
                self.maybe_finish_drain();
            }
            Some(PingPurpose::DrainSubscription(sid)) => self.end_drained_subscription(sid),
            Some(PingPurpose::KeepAlive) | None => {}
        }
    }

    fn on_server_error(&mut self, now: Instant, e: ServerError) {
        self.events.push_back(Event::ServerError(e.clone()));
        if e.closes_connection() || matches!(self.state, State::AwaitPong | State::AwaitCredentials) {
            self.lose(now, ConnectionError::Server(e));
            return;
        }
        if let Some((PermissionOp::Subscribe, subject, queue)) = e.permission() {
            // The reply inbox refused: no request can get an answer, so none waits for its timeout.
            if queue.is_none() && self.mux.subscription().is_some_and(|(_, s)| s.as_bytes() == subject.as_bytes()) {
                self.mux.forget_sub();
                for id in self.mux.drain_all(&mut self.timers) {
                    let result = Err(RequestError::PermissionDenied(e.clone()));
                    self.events.push_back(Event::Response { id, result, done: true });
                }
                self.maybe_finish_drain();
            }
            for sid in self.subs.find(subject.as_bytes(), queue.map(str::as_bytes)) {
                self.subs.remove(sid);
                let reason = SubscriptionEnd::PermissionDenied(e.clone());
                self.events.push_back(Event::SubscriptionEnded { sid, reason });
            }
        }
    }

    /// Counts a message and settles where it goes: a reply to its request (as an event), nowhere (its
    /// subscription ended), or to its subscriber (returned, with whether it was the subscription's last).
    fn accept_msg(&mut self, msg: Msg) -> Option<(Msg, bool)> {
        self.stats.in_msgs += 1;
        let sid = msg.sid();
        if Some(sid) == self.mux.sid() {
            if let Routed::Reply { id, result, done } = self.mux.route(msg, &mut self.timers) {
                self.events.push_back(Event::Response { id, result, done });
                self.maybe_finish_drain();
            }
            return None;
        }
        match self.subs.deliver(sid) {
            Delivery::Unknown => None,
            Delivery::Delivered => Some((msg, false)),
            Delivery::Last => {
                // The server may still hold the subscription (a max over 9 digits was capped, or its count
                // restarted on reconnect): our count is the one that decides.
                self.out.push_unsub(sid, None);
                Some((msg, true))
            }
        }
    }

    fn end_drained_subscription(&mut self, sid: u64) {
        if self.subs.remove(sid).is_some() {
            self.events.push_back(Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Drained });
        }
    }

    /// A message for `sid` that could not be delivered (bad header block) still counts toward its max.
    fn count_undeliverable(&mut self, sid: u64) {
        if self.subs.deliver(sid) == Delivery::Last {
            self.out.push_unsub(sid, None);
            self.events.push_back(Event::SubscriptionEnded { sid, reason: SubscriptionEnd::MaxReached });
        }
    }

    /// The transport is gone or must go: clean up, then reconnect later or close.
    fn lose(&mut self, now: Instant, error: ConnectionError) {
        let was = self.state;
        if matches!(was, State::Closed | State::Disconnected) {
            return;
        }
        self.input.clear();
        self.input_seen = 0;
        self.decoder.reset();
        self.out.clear();
        self.tls_active = false;
        self.timers.clear(Timer::Connect);
        self.timers.clear(Timer::Ping);
        let pings: Vec<PingPurpose> = self.pings.drain(..).collect();
        for purpose in pings {
            match purpose {
                PingPurpose::Fence(id) => {
                    if self.end_flush(id) {
                        let result = Err(FlushError::Disconnected);
                        self.events.push_back(Event::Flushed { id: FlushId(id), result });
                    }
                }
                // Its UNSUB was sent: the next connection must not subscribe it again.
                PingPurpose::DrainSubscription(sid) => self.end_drained_subscription(sid),
                PingPurpose::KeepAlive | PingPurpose::Drain => {}
            }
        }
        self.keepalive_out = 0;
        self.actions.push_back(Action::CloseTransport);
        self.state = State::Disconnected;
        match was {
            State::Draining => {
                self.finish_close(CloseReason::Drained);
                return;
            }
            State::Connected => self.events.push_back(Event::Disconnected(error.clone())),
            _ => {
                if let Some(server) = self.pool.current().cloned() {
                    self.events.push_back(Event::ConnectFailed { server, error: error.clone() });
                }
                self.pool.record_failure(self.config.reconnect.max_attempts_per_server);
                self.failures += 1;
                if !self.ever_connected && !self.config.retry_on_initial_connect {
                    self.initial_attempts += 1;
                    if self.initial_attempts >= self.config.servers.len() || self.pool.is_empty() {
                        self.finish_close(CloseReason::InitialConnectFailed(error));
                        return;
                    }
                }
            }
        }
        if self.pool.is_empty() {
            self.finish_close(CloseReason::ReconnectsExhausted(error));
            return;
        }
        let wait = backoff(self.failures, &self.config.reconnect, &mut self.rng);
        self.timers.set(Timer::Reconnect, after(now, wait));
    }

    pub(super) fn maybe_finish_drain(&mut self) {
        if self.state == State::Draining && self.drain_fenced && self.mux.in_flight() == 0 {
            self.finish_close(CloseReason::Drained);
        }
    }

    pub(super) fn finish_close(&mut self, reason: CloseReason) {
        let had_transport = !matches!(self.state, State::Disconnected | State::Closed);
        self.state = State::Closed;
        // A dial or TLS start still waiting is moot now (a reconnect and a drain's end due at once): a closed
        // connection never asks for a transport. Found by the fuzz target's check.
        self.actions.retain(|a| *a == Action::CloseTransport);
        self.timers.clear_all();
        for id in self.mux.drain_all(&mut self.timers) {
            self.events.push_back(Event::Response { id, result: Err(RequestError::Closed), done: true });
        }
        let mut open: Vec<u64> = core::mem::take(&mut self.flushes).into_keys().collect();
        open.sort_unstable();
        for id in open {
            self.events.push_back(Event::Flushed { id: FlushId(id), result: Err(FlushError::Closed) });
        }
        for sid in self.subs.sids() {
            self.subs.remove(sid);
            self.events.push_back(Event::SubscriptionEnded { sid, reason: SubscriptionEnd::Closed });
        }
        self.pending.clear();
        self.unsent_fences.clear();
        if had_transport {
            self.actions.push_back(Action::CloseTransport);
        }
        self.events.push_back(Event::Closed(reason));
    }
}
