//! Authentication material for tests: nkey users, config-file users with
//! permissions, and operator mode with JWTs and `.creds` files.
//!
//! Config-file users (`authorization { users = [...] }`):
//!
//! ```
//! use nats_server_harness::auth::{AuthUser, NkeyUser, Permissions};
//! use nats_server_harness::NatsServer;
//!
//! let nkey = NkeyUser::generate();
//! let server = NatsServer::builder()
//!     .nkey_user(nkey.public_key())
//!     .auth_user(AuthUser::password("limited", "pw").permissions(
//!         Permissions::new().allow_publish("allowed.>").allow_subscribe("_INBOX.>"),
//!     ))
//!     .start()
//!     .expect("server starts");
//! // The client signs this nonce with the seed: `nkey.sign_nonce(nonce)`.
//! assert!(server.fetch_info().unwrap().contains("\"nonce\":"));
//! ```
//!
//! Operator mode (decentralized JWT auth with a memory resolver):
//!
//! ```
//! use nats_server_harness::auth::OperatorFixture;
//! use nats_server_harness::NatsServer;
//!
//! let operator = OperatorFixture::generate().expect("keys");
//! let server = NatsServer::builder().operator(&operator).start().expect("server starts");
//! let user = operator.user("alice").expect("user JWT");
//! let creds = user.creds_file().expect("creds file"); // removed on drop
//! assert!(std::fs::read_to_string(creds.path()).unwrap().contains("-----BEGIN NATS USER JWT-----"));
//! assert!(server.fetch_info().unwrap().contains("\"nonce\":"));
//! ```

use std::fmt::{self, Write as _};
use std::io;

use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use serde_json::{json, Map, Value};

use crate::util::conf_quote;
use crate::HarnessError;

mod operator;

pub use operator::{decode_jwt_claims, format_creds, CredsFile, OperatorFixture, UserCreds, UserOptions};

fn nkey_error(what: &str, e: impl fmt::Display) -> HarnessError {
    HarnessError::Io(io::Error::other(format!("{what}: {e}")))
}

fn key_from_seed(seed: &str) -> Result<KeyPair, HarnessError> {
    KeyPair::from_seed(seed).map_err(|e| nkey_error("invalid nkey seed", e))
}

fn seed_of(kp: &KeyPair) -> String {
    // Only fails for a key pair made from a public key, which never happens here.
    kp.seed().expect("a generated key pair has a seed")
}

/// Signs `nonce` (the `INFO` `nonce` string, as bytes) with `seed` and
/// returns the signature as base64url without padding — the `sig` field of
/// `CONNECT`.
pub fn sign_nonce(seed: &str, nonce: &str) -> Result<String, HarnessError> {
    let kp = key_from_seed(seed)?;
    let sig = kp.sign(nonce.as_bytes()).map_err(|e| nkey_error("signing the nonce", e))?;
    Ok(BASE64URL_NOPAD.encode(&sig))
}

/// A user nkey (public key `U...`, seed `SU...`), for nkey authentication
/// (`authorization { users = [ { nkey: "U..." } ] }`, see
/// [`ServerBuilder::nkey_user`](crate::ServerBuilder::nkey_user)).
#[derive(Clone)]
pub struct NkeyUser {
    seed: String,
    public_key: String,
}

impl fmt::Debug for NkeyUser {
    /// Shows the public key only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NkeyUser").field("public_key", &self.public_key).finish_non_exhaustive()
    }
}

impl NkeyUser {
    /// A fresh random user key.
    pub fn generate() -> NkeyUser {
        let kp = KeyPair::new_user();
        NkeyUser { seed: seed_of(&kp), public_key: kp.public_key() }
    }

    /// The user key of an existing seed (`SU...`).
    pub fn from_seed(seed: &str) -> Result<NkeyUser, HarnessError> {
        let kp = key_from_seed(seed)?;
        Ok(NkeyUser { seed: seed.to_owned(), public_key: kp.public_key() })
    }

    /// The seed, `SU...` (what a client is configured with).
    pub fn seed(&self) -> &str {
        &self.seed
    }

    /// The public key, `U...` (what the server is configured with).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Signs an `INFO` `nonce`; see [`sign_nonce`].
    pub fn sign_nonce(&self, nonce: &str) -> String {
        sign_nonce(&self.seed, nonce).expect("own seed is valid")
    }
}

/// Publish/subscribe permissions of a user, rendered into the config file
/// (`permissions { publish { allow, deny } subscribe { allow, deny } }`) or
/// into a user JWT (`pub`/`sub` with `allow`/`deny`).
///
/// An empty allow list means "everything not denied".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    publish_allow: Vec<String>,
    publish_deny: Vec<String>,
    subscribe_allow: Vec<String>,
    subscribe_deny: Vec<String>,
}

impl Permissions {
    /// No restrictions (add some with the other methods).
    pub fn new() -> Permissions {
        Permissions::default()
    }

    /// Allows publishing to `subject` (wildcards allowed); once any subject is
    /// allowed, all others are denied.
    pub fn allow_publish(mut self, subject: &str) -> Permissions {
        self.publish_allow.push(subject.to_owned());
        self
    }

    /// Denies publishing to `subject`.
    pub fn deny_publish(mut self, subject: &str) -> Permissions {
        self.publish_deny.push(subject.to_owned());
        self
    }

    /// Allows subscribing to `subject`; once any subject is allowed, all
    /// others are denied.
    pub fn allow_subscribe(mut self, subject: &str) -> Permissions {
        self.subscribe_allow.push(subject.to_owned());
        self
    }

    /// Denies subscribing to `subject`.
    pub fn deny_subscribe(mut self, subject: &str) -> Permissions {
        self.subscribe_deny.push(subject.to_owned());
        self
    }

    fn render_section(name: &str, allow: &[String], deny: &[String]) -> Option<String> {
        let list = |items: &[String]| items.iter().map(|s| conf_quote(s)).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !allow.is_empty() {
            parts.push(format!("allow: [{}]", list(allow)));
        }
        if !deny.is_empty() {
            parts.push(format!("deny: [{}]", list(deny)));
        }
        (!parts.is_empty()).then(|| format!("{name} {{ {} }}", parts.join(", ")))
    }

    /// `permissions { ... }` on one line, for a config-file user (entries are
    /// comma-separated: the config parser does not accept bare spaces).
    pub(crate) fn render_config(&self) -> String {
        let sections: Vec<String> = [
            Self::render_section("publish", &self.publish_allow, &self.publish_deny),
            Self::render_section("subscribe", &self.subscribe_allow, &self.subscribe_deny),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!("permissions {{ {} }}", sections.join(", "))
    }

    fn jwt_section(allow: &[String], deny: &[String]) -> Value {
        let mut section = Map::new();
        if !allow.is_empty() {
            section.insert("allow".into(), json!(allow));
        }
        if !deny.is_empty() {
            section.insert("deny".into(), json!(deny));
        }
        Value::Object(section)
    }
}

#[derive(Debug, Clone)]
enum UserKind {
    Password { user: String, password: String },
    Nkey(String),
}

/// One entry of the config file's `authorization { users = [...] }`: a
/// user/password or an nkey user, optionally with [`Permissions`]. Add with
/// [`ServerBuilder::auth_user`](crate::ServerBuilder::auth_user).
#[derive(Debug, Clone)]
pub struct AuthUser {
    kind: UserKind,
    permissions: Option<Permissions>,
}

impl AuthUser {
    /// A user authenticating with `CONNECT {"user":..,"pass":..}`.
    pub fn password(user: &str, password: &str) -> AuthUser {
        AuthUser {
            kind: UserKind::Password { user: user.to_owned(), password: password.to_owned() },
            permissions: None,
        }
    }

    /// A user authenticating with the nkey `public_key` (`U...`) by signing
    /// the server's nonce.
    pub fn nkey(public_key: &str) -> AuthUser {
        AuthUser { kind: UserKind::Nkey(public_key.to_owned()), permissions: None }
    }

    /// Restricts what the user may publish and subscribe to.
    pub fn permissions(mut self, permissions: Permissions) -> AuthUser {
        self.permissions = Some(permissions);
        self
    }

    /// `{ user: .., password: .., permissions { .. } }`.
    pub(crate) fn render_config(&self) -> String {
        let mut out = String::from("{ ");
        match &self.kind {
            UserKind::Password { user, password } => {
                let _ = write!(out, "user: {}, password: {}", conf_quote(user), conf_quote(password));
            }
            UserKind::Nkey(key) => {
                let _ = write!(out, "nkey: {}", conf_quote(key));
            }
        }
        if let Some(p) = self.permissions.as_ref().filter(|p| **p != Permissions::default()) {
            let _ = write!(out, ", {}", p.render_config());
        }
        out.push_str(" }");
        out
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::UNIX_EPOCH;

    use super::operator::JWT_HEADER;
    use super::*;

    fn verify_jwt(jwt: &str, signer_public: &str) {
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = BASE64URL_NOPAD.decode(sig.as_bytes()).unwrap();
        KeyPair::from_public_key(signer_public).unwrap().verify(input.as_bytes(), &sig).unwrap();
        let header = BASE64URL_NOPAD.decode(input.split('.').next().unwrap().as_bytes()).unwrap();
        assert_eq!(header, JWT_HEADER.as_bytes());
    }

    #[test]
    fn jwts_are_signed_by_their_issuers() {
        let op = OperatorFixture::new();
        verify_jwt(op.operator_jwt(), op.operator_public_key());
        verify_jwt(op.account_jwt(), op.operator_public_key());
        verify_jwt(op.system_account_jwt(), op.operator_public_key());
        let user = op.user("bob").unwrap();
        verify_jwt(user.jwt(), op.account_public_key());

        let claims = decode_jwt_claims(user.jwt()).unwrap();
        assert_eq!(claims["iss"], op.account_public_key());
        assert_eq!(claims["sub"], user.public_key());
        assert_eq!(claims["name"], "bob");
        assert_eq!(claims["nats"]["type"], "user");
        assert_eq!(claims["nats"]["version"], 2);
        assert!(claims["jti"].as_str().unwrap().len() >= 50);
        assert!(claims.get("exp").is_none());
        assert!(user.public_key().starts_with('U') && user.seed().starts_with("SU"));

        let op_claims = decode_jwt_claims(op.operator_jwt()).unwrap();
        assert_eq!(op_claims["iss"], op_claims["sub"]);
        assert_eq!(op_claims["nats"]["system_account"], op.system_account_public_key());
        let acc = decode_jwt_claims(op.account_jwt()).unwrap();
        assert_eq!(acc["nats"]["limits"]["conn"], -1);
        assert_eq!(acc["nats"]["limits"]["disk_storage"], -1);
    }

    #[test]
    fn user_options_land_in_claims() {
        let op = OperatorFixture::new();
        let at = UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000);
        let user = op
            .user_with(
                "limited",
                UserOptions::new()
                    .permissions(Permissions::new().allow_publish("a.>").deny_subscribe("b"))
                    .expires_at(at)
                    .bearer_token(true),
            )
            .unwrap();
        let claims = decode_jwt_claims(user.jwt()).unwrap();
        assert_eq!(claims["exp"], 2_000_000_000u64);
        assert_eq!(claims["nats"]["pub"], json!({"allow": ["a.>"]}));
        assert_eq!(claims["nats"]["sub"], json!({"deny": ["b"]}));
        assert_eq!(claims["nats"]["bearer_token"], true);
    }

    #[test]
    fn creds_format() {
        let op = OperatorFixture::new();
        let user = op.user("carol").unwrap();
        let creds = user.creds();
        let lines: Vec<&str> = creds.lines().collect();
        assert_eq!(lines[0], "-----BEGIN NATS USER JWT-----");
        assert_eq!(lines[1], user.jwt());
        assert_eq!(lines[2], "------END NATS USER JWT------");
        let seed_at = lines.iter().position(|l| *l == "-----BEGIN USER NKEY SEED-----").unwrap();
        assert_eq!(lines[seed_at + 1], user.seed());
        assert_eq!(lines[seed_at + 2], "------END USER NKEY SEED------");

        let file = user.creds_file().unwrap();
        let path = file.path().to_path_buf();
        assert_eq!(fs::read_to_string(&path).unwrap(), creds);
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn nkey_signatures_verify() {
        let user = NkeyUser::generate();
        assert!(user.public_key().starts_with('U'));
        assert_eq!(NkeyUser::from_seed(user.seed()).unwrap().public_key(), user.public_key());
        let sig = BASE64URL_NOPAD.decode(user.sign_nonce("abc").as_bytes()).unwrap();
        KeyPair::from_public_key(user.public_key()).unwrap().verify(b"abc", &sig).unwrap();
        assert!(NkeyUser::from_seed("garbage").is_err());
    }

    #[test]
    fn renders_config_users() {
        let perms = Permissions::new().allow_publish("a").deny_publish("a.b").allow_subscribe("c");
        let text = AuthUser::password("u", "p\"w").permissions(perms).render_config();
        assert_eq!(
            text,
            r#"{ user: "u", password: "p\"w", permissions { publish { allow: ["a"], deny: ["a.b"] }, subscribe { allow: ["c"] } } }"#
        );
        assert_eq!(AuthUser::nkey("UABC").render_config(), r#"{ nkey: "UABC" }"#);
    }
}
