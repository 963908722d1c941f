//! Hosting services until the process is asked to stop: [`Host`] runs one or more blocking services until
//! SIGINT (Ctrl-C) or SIGTERM, or until every one of them has ended on its own, then stops them all
//! gracefully (subscriptions drained, the requests already received answered, up to a timeout) and reports
//! how each ended.
//!
//! ```no_run
//! use std::time::Duration;
//! use micro::host::Host;
//! use micro::{EndpointConfig, Service, ServiceConfig};
//!
//! // First, so that a signal arriving while the services start stops them instead of killing the process.
//! let mut host = Host::new()?.stop_timeout(Duration::from_secs(10));
//! let client = nats_blocking::connect("nats://127.0.0.1:4222")?;
//! let service = Service::start(client, ServiceConfig::new("echo", "1.0.0"))?;
//! service.endpoint(&service.root(), EndpointConfig::new("echo"), |mut req| {
//!     let body = req.payload_bytes();
//!     let _ = req.respond(body);
//! })?;
//! host.add(service);
//! let hosted = host.run();
//! println!("{hosted}");
//! std::process::exit(if hosted.is_clean() { 0 } else { 1 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::thread;
use std::time::{Duration, Instant};

use nats_client::seam::Client;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::{Service, StopReason};

/// How long [`Host::run`] gives the requests in flight, by default, once asked to stop.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Services run until SIGINT or SIGTERM: see the [module](self).
pub struct Host<T: Client> {
    signals: Signals,
    services: Vec<Service<T>>,
    stop_timeout: Duration,
}

impl<T: Client> fmt::Debug for Host<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.services.iter().map(Service::name).collect();
        f.debug_struct("Host").field("services", &names).field("stop_timeout", &self.stop_timeout).finish()
    }
}

impl<T: Client> Host<T> {
    /// A host with no service yet. SIGINT and SIGTERM are caught from now on (make it before the services,
    /// so a signal while they start is a stop and not the process's death). Fails only if the handlers
    /// cannot be installed.
    pub fn new() -> io::Result<Self> {
        Ok(Self { signals: Signals::new([SIGINT, SIGTERM])?, services: Vec::new(), stop_timeout: DEFAULT_STOP_TIMEOUT })
    }

    /// How long the requests in flight get once asked to stop (default [`DEFAULT_STOP_TIMEOUT`]).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Hosts a started service.
    pub fn add(&mut self, service: Service<T>) -> &mut Self {
        self.services.push(service);
        self
    }

    /// The services hosted.
    pub fn services(&self) -> &[Service<T>] {
        &self.services
    }

    /// Something that ends [`run`](Self::run) from elsewhere, as a signal would (embedding, tests).
    pub fn handle(&self) -> HostHandle {
        HostHandle(self.signals.handle())
    }

    /// Waits for SIGINT or SIGTERM, or for every service to end by itself (its connection closed, say), or
    /// for a [`HostHandle::stop`]; then stops every service at once, giving the requests in flight the stop
    /// timeout, and reports how each ended. The handlers stay installed until the host is dropped.
    pub fn run(mut self) -> Hosted {
        let started = Instant::now();
        let handle = self.signals.handle();
        let services = &self.services;
        let signal = thread::scope(|s| {
            let watcher = s.spawn(move || {
                for service in services {
                    service.done();
                }
                // Every service ended on its own: nothing is left to wait for.
                handle.close();
            });
            let signal = self.signals.forever().next();
            // Stopping ends the watcher's waits too.
            let timeout = self.stop_timeout;
            let stops: Vec<_> = services.iter().map(|service| s.spawn(move || service.stop(timeout))).collect();
            let reasons: Vec<StopReason> =
                stops.into_iter().map(|stop| stop.join().unwrap_or(StopReason::Timeout)).collect();
            let _ = watcher.join();
            (signal, reasons)
        });
        let (signal, reasons) = signal;
        let stopped = self.services.iter().map(Service::name).zip(reasons).collect();
        Hosted { signal, stopped, ran: started.elapsed() }
    }
}

/// Ends a [`Host::run`] from another thread: see [`Host::handle`].
#[derive(Debug, Clone)]
pub struct HostHandle(Handle);

impl HostHandle {
    /// Ends the wait: the services are stopped as on a signal.
    pub fn stop(&self) {
        self.0.close();
    }
}

/// How a [`Host::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosted {
    /// The signal that ended it (`SIGINT` 2, `SIGTERM` 15); `None` when the services ended by themselves or
    /// a [`HostHandle`] stopped it.
    pub signal: Option<i32>,
    /// Each service's name and how it stopped, in the order they were added.
    pub stopped: Vec<(String, StopReason)>,
    /// How long it ran.
    pub ran: Duration,
}

impl Hosted {
    /// True when every service drained and answered every request in flight.
    pub fn is_clean(&self) -> bool {
        self.stopped.iter().all(|(_, reason)| *reason == StopReason::Stopped)
    }
}

impl fmt::Display for Hosted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = match self.signal {
            Some(SIGINT) => "on SIGINT".to_owned(),
            Some(SIGTERM) => "on SIGTERM".to_owned(),
            Some(other) => format!("on signal {other}"),
            None => "when asked".to_owned(),
        };
        for (i, (name, reason)) in self.stopped.iter().enumerate() {
            let how = match reason {
                StopReason::Stopped => "drained, every request answered",
                StopReason::Timeout => "requests still in flight at the stop timeout",
                StopReason::ConnectionClosed => "its connection closed",
            };
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{name} stopped {cause} after {:.1?}: {how}", self.ran)?;
        }
        Ok(())
    }
}
