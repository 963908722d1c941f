//! Locating `nats-server` binaries and asking them for their version.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::HarnessError;

/// Which `nats-server` build to run.
///
/// `scripts/setup` installs both and writes their paths to `.tools/env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerVersion {
    /// The current server (2.15.x): `$NATS_SERVER_BIN`, else
    /// `<workspace>/.tools/venv/bin/nats-server`, else `nats-server` on `PATH`.
    #[default]
    Current,
    /// An older server (Debian's 2.9.x): `$NATS_SERVER_BIN_OLD`, else
    /// `/usr/bin/nats-server` or `/usr/sbin/nats-server`.
    Old,
}

/// The environment variable naming the [`ServerVersion::Current`] binary.
pub const ENV_CURRENT: &str = "NATS_SERVER_BIN";
/// The environment variable naming the [`ServerVersion::Old`] binary.
pub const ENV_OLD: &str = "NATS_SERVER_BIN_OLD";

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Finds the `nats-server` binary for `version`.
///
/// An environment override that is set but does not name an existing file is
/// an error (it is never silently replaced by another binary). A missing
/// binary is an error telling the user to run `scripts/setup`.
pub fn server_binary(version: ServerVersion) -> Result<PathBuf, HarnessError> {
    let (var, fallbacks): (&str, Vec<PathBuf>) = match version {
        ServerVersion::Current => (ENV_CURRENT, vec![workspace_root().join(".tools/venv/bin/nats-server")]),
        ServerVersion::Old => {
            (ENV_OLD, vec![PathBuf::from("/usr/bin/nats-server"), PathBuf::from("/usr/sbin/nats-server")])
        }
    };
    let mut searched = Vec::new();
    if let Some(value) = env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(format!("${var}={}", path.display()));
        return Err(HarnessError::BinaryNotFound { version, searched });
    }
    searched.push(format!("${var} (unset)"));
    for path in fallbacks {
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path.display().to_string());
    }
    if version == ServerVersion::Current {
        if let Some(path) = find_on_path("nats-server") {
            return Ok(path);
        }
        searched.push("nats-server on $PATH".to_owned());
    }
    Err(HarnessError::BinaryNotFound { version, searched })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Runs `<binary> --version` and returns the bare version, e.g. `"2.15.1"`.
pub fn binary_version(binary: &Path) -> Result<String, HarnessError> {
    let output = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn { binary: binary.to_path_buf(), source })?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    parse_version_output(&text).ok_or_else(|| {
        HarnessError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("could not parse the output of `{} --version`: {text:?}", binary.display()),
        ))
    })
}

/// Extracts `"2.15.1"` from output like `"nats-server: v2.15.1\n"`.
pub(crate) fn parse_version_output(text: &str) -> Option<String> {
    text.split_whitespace().find_map(|word| {
        let word = word.strip_prefix('v').unwrap_or(word);
        let starts_with_digit = word.chars().next().is_some_and(|c| c.is_ascii_digit());
        (starts_with_digit && word.contains('.')).then(|| word.to_owned())
    })
}

/// Parses the leading `major.minor` of a version string such as `"2.9.10"`.
pub fn parse_major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_output() {
        assert_eq!(parse_version_output("nats-server: v2.15.1\n").as_deref(), Some("2.15.1"));
        assert_eq!(parse_version_output("nats-server: v2.9.10").as_deref(), Some("2.9.10"));
        assert_eq!(parse_version_output("garbage"), None);
    }

    #[test]
    fn parses_major_minor() {
        assert_eq!(parse_major_minor("2.9.10"), Some((2, 9)));
        assert_eq!(parse_major_minor("2.15.1-beta"), Some((2, 15)));
        assert_eq!(parse_major_minor("x"), None);
    }
}
