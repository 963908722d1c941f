//! The promises checked at every step, once the network settles, and at the end.

use crate::world::{Check, World};

impl World {
    /// Promises that hold at every step.
    pub(crate) fn check_all(&mut self) -> Check {
        let now = self.instant();
        for (ci, c) in self.clients.iter().enumerate() {
            if let Some((id, _)) = c.requests.iter().find(|(_, r)| !r.done && r.deadline < now) {
                return Err(format!("client {ci}: {id:?} still open past its deadline"));
            }
            if let Some((id, _)) = c.flushes.iter().find(|(_, f)| f.deadline < now) {
                return Err(format!("client {ci}: {id:?} still open past its deadline"));
            }
            if c.drain_deadline.is_some_and(|d| d < self.now) && !c.closed {
                return Err(format!("client {ci}: drain still going past its timeout"));
            }
            let bound = self.profile.reconnect_buffer as u64 + 6 * c.flush_calls;
            if c.conn.reconnect_buffer_len() as u64 > bound {
                return Err(format!(
                    "client {ci}: reconnect buffer {} B over its bound",
                    c.conn.reconnect_buffer_len()
                ));
            }
            let open_subs = c.subs.values().filter(|s| !s.ended).count();
            let open_requests = c.requests.values().filter(|r| !r.done).count();
            if c.conn.subscription_count() != open_subs || c.conn.requests_in_flight() != open_requests {
                return Err(format!(
                    "client {ci}: the core holds {} subscriptions and {} requests; the user has {open_subs} and \
                     {open_requests}",
                    c.conn.subscription_count(),
                    c.conn.requests_in_flight()
                ));
            }
            if c.closed && (c.conn.reconnect_buffer_len() > 0 || !c.flushes.is_empty() || open_subs > 0) {
                return Err(format!("client {ci}: closed but still holds work"));
            }
        }
        Ok(())
    }

    /// Once settled: the server holds exactly the client's live subscriptions.
    pub(crate) fn check_agreement(&self, ci: usize) -> Check {
        let c = &self.clients[ci];
        if c.closed || c.wrong_password {
            return Ok(());
        }
        let li = c.link.and_then(|id| self.link_index(id)).ok_or_else(|| format!("client {ci}: no connection"))?;
        let server: Vec<(u64, String, Option<String>, Option<u64>)> = self.links[li]
            .subs
            .iter()
            .filter(|(_, s)| !s.subject.starts_with("_INBOX."))
            .map(|(&sid, s)| (sid, s.subject.clone(), s.queue.clone(), s.max.map(|m| m - s.delivered)))
            .collect();
        let client: Vec<(u64, String, Option<String>, Option<u64>)> = c
            .subs
            .iter()
            .filter(|(_, s)| !s.ended)
            .map(|(&sid, s)| (sid, s.pattern.clone(), s.queue.clone(), s.max.map(|m| m - s.delivered)))
            .collect();
        // Same subscriptions and groups; the server may allow more than is left (a revived subscription counts
        // from zero) but never fewer: the client's own count ends it.
        let agree = server.len() == client.len()
            && server.iter().zip(&client).all(|(s, c)| {
                s.0 == c.0
                    && s.1 == c.1
                    && s.2 == c.2
                    && match (s.3, c.3) {
                        (None, None) => true,
                        (Some(server_left), Some(client_left)) => server_left >= client_left,
                        _ => false,
                    }
            });
        if !agree {
            return Err(format!("client {ci}: the server holds {server:?}, the client {client:?}"));
        }
        Ok(())
    }

    /// Closes every client; nothing may be left open.
    pub(crate) fn finish(&mut self) -> Check {
        for ci in 0..self.clients.len() {
            if !self.clients[ci].closed {
                self.clients[ci].close_requested = true;
                self.clients[ci].conn.close();
                self.pump(ci)?;
            }
            let c = &self.clients[ci];
            if !c.closed || c.requests.values().any(|r| !r.done) {
                return Err(format!("client {ci}: close left requests open or no Closed event"));
            }
        }
        self.check_all()
    }
}
