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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nats_client::seam::Client;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use crate::{Service, StopReason};

/// How long [`Host::run`] gives the requests in flight, by default, once asked to stop.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// True while no host waits for a signal: SIGINT and SIGTERM then take their default action (the process
/// ends), as they would without a host. One flag for the process, registered once.
fn default_action() -> io::Result<&'static AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(flag) = FLAG.get() {
        return Ok(flag);
    }
    let flag = Arc::new(AtomicBool::new(true));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_default(signal, flag.clone())?;
    }
    Ok(FLAG.get_or_init(|| flag))
}

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
    /// so a signal while they start is a stop and not the process's death) until the first one arrives or
    /// [`run`](Self::run) returns: a second signal while the services stop, or one after, ends the process as
    /// it would without a host. One host at a time. Fails only if the handlers cannot be installed.
    pub fn new() -> io::Result<Self> {
        let default = default_action()?;
        let signals = Signals::new([SIGINT, SIGTERM])?;
        default.store(false, Ordering::SeqCst);
        Ok(Self { signals, services: Vec::new(), stop_timeout: DEFAULT_STOP_TIMEOUT })
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
    /// timeout, and reports how each ended.
    pub fn run(mut self) -> Hosted {
        let started = Instant::now();
        let handle = self.signals.handle();
        let services = &self.services;
        let all_ended = AtomicBool::new(false);
        let signal = thread::scope(|s| {
            let ended = &all_ended;
            let watcher = s.spawn(move || {
                for service in services {
                    service.done();
                }
                // Every service ended on its own: nothing is left to wait for.
                ended.store(true, Ordering::SeqCst);
                handle.close();
            });
            let signal = self.signals.forever().next();
            // Read now: the stops below end the services too, and the watcher with them.
            let by_themselves = ended.load(Ordering::SeqCst);
            // From now on a signal is the default again: a second Ctrl-C does not wait for the stop.
            if let Ok(default) = default_action() {
                default.store(true, Ordering::SeqCst);
            }
            // Stopping ends the watcher's waits too.
            let timeout = self.stop_timeout;
            let stops: Vec<_> = services.iter().map(|service| s.spawn(move || service.stop(timeout))).collect();
            let reasons: Vec<StopReason> =
                stops.into_iter().map(|stop| stop.join().unwrap_or(StopReason::Timeout)).collect();
            let _ = watcher.join();
            (signal, by_themselves, reasons)
        });
        let (signal, by_themselves, reasons) = signal;
        let stopped = self.services.iter().map(Service::name).zip(reasons).collect();
        let cause = match signal {
            Some(signal) => Ended::Signal(signal),
            None if by_themselves => Ended::ByThemselves,
            None => Ended::Handle,
        };
        Hosted { cause, stopped, ran: started.elapsed() }
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

/// What ended a [`Host::run`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// This signal (`SIGINT` 2, `SIGTERM` 15).
    Signal(i32),
    /// A [`HostHandle::stop`].
    Handle,
    /// Every service ended on its own.
    ByThemselves,
}

/// How a [`Host::run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosted {
    /// What ended it.
    pub cause: Ended,
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
        let cause = match self.cause {
            Ended::Signal(SIGINT) => "on SIGINT".to_owned(),
            Ended::Signal(SIGTERM) => "on SIGTERM".to_owned(),
            Ended::Signal(other) => format!("on signal {other}"),
            Ended::Handle => "when asked".to_owned(),
            Ended::ByThemselves => "by itself".to_owned(),
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
