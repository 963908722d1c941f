//! The harness error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::ServerVersion;

/// Everything that can go wrong while locating, starting or talking to a
/// `nats-server` process.
///
/// The `Display` output of the start failures includes the captured server
/// log, so a failing test shows why the server did not come up.
#[derive(Debug)]
pub enum HarnessError {
    /// No `nats-server` binary was found for the requested version.
    BinaryNotFound {
        /// The version that was asked for.
        version: ServerVersion,
        /// Where the harness looked, in order.
        searched: Vec<String>,
    },
    /// The server process could not be spawned (or `--version` not run).
    Spawn {
        /// The binary that failed to start.
        binary: PathBuf,
        /// The underlying OS error.
        source: io::Error,
    },
    /// The server (or cluster) did not become ready in time.
    StartTimeout {
        /// What was being waited for.
        what: String,
        /// The captured server log(s).
        log: String,
    },
    /// The server process exited while the harness waited for it to start.
    Exited {
        /// The exit status, as text.
        status: String,
        /// The captured server log.
        log: String,
    },
    /// Any other I/O error (temp dir, config file, sockets).
    Io(io::Error),
}

impl HarnessError {
    /// The captured server log attached to this error, if any.
    pub fn log(&self) -> Option<&str> {
        match self {
            HarnessError::StartTimeout { log, .. } | HarnessError::Exited { log, .. } => Some(log),
            _ => None,
        }
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::BinaryNotFound { version, searched } => write!(
                f,
                "no nats-server binary found for {version:?} (looked in: {}); \
                 run `scripts/setup` from the repository root, then `source .tools/env`",
                searched.join(", ")
            ),
            HarnessError::Spawn { binary, source } => {
                write!(f, "failed to run {}: {source}", binary.display())
            }
            HarnessError::StartTimeout { what, log } => {
                write!(f, "timed out waiting for {what}\n--- server log ---\n{log}")
            }
            HarnessError::Exited { status, log } => {
                write!(f, "nats-server exited during startup ({status})\n--- server log ---\n{log}")
            }
            HarnessError::Io(e) => write!(f, "harness I/O error: {e}"),
        }
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HarnessError::Spawn { source, .. } => Some(source),
            HarnessError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for HarnessError {
    fn from(e: io::Error) -> Self {
        HarnessError::Io(e)
    }
}
