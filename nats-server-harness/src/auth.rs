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
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use nkeys::KeyPair;
use serde_json::{json, Map, Value};

use crate::util::{conf_quote, TempDir};
use crate::HarnessError;

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

/// The JWT header nats-server expects for v2 claims.
const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Encodes and signs a JWT: sets `iss` (the signer), `iat` (now) and `jti`
/// (base32 of the SHA-512/256 of the claims without `jti`, as the Go
/// library does), then `base64url(header).base64url(claims).base64url(sig)`.
fn encode_jwt(signer: &KeyPair, mut claims: Map<String, Value>) -> Result<String, HarnessError> {
    claims.remove("jti");
    claims.insert("iss".into(), Value::String(signer.public_key()));
    claims.insert("iat".into(), json!(unix_now()));
    let unhashed = serde_json::to_vec(&claims).map_err(|e| nkey_error("encoding JWT claims", e))?;
    let digest = ring::digest::digest(&ring::digest::SHA512_256, &unhashed);
    claims.insert("jti".into(), Value::String(BASE32_NOPAD.encode(digest.as_ref())));
    let body = serde_json::to_vec(&claims).map_err(|e| nkey_error("encoding JWT claims", e))?;
    let signing_input = format!("{}.{}", BASE64URL_NOPAD.encode(JWT_HEADER.as_bytes()), BASE64URL_NOPAD.encode(&body));
    let sig = signer.sign(signing_input.as_bytes()).map_err(|e| nkey_error("signing a JWT", e))?;
    Ok(format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&sig)))
}

/// The claims (payload) of a JWT as JSON, without checking the signature.
pub fn decode_jwt_claims(jwt: &str) -> Result<Value, HarnessError> {
    let bad = |why: &str| HarnessError::Io(io::Error::new(io::ErrorKind::InvalidData, format!("bad JWT: {why}")));
    let mut parts = jwt.split('.');
    let (Some(_), Some(body), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("not three dot-separated parts"));
    };
    let bytes = BASE64URL_NOPAD.decode(body.as_bytes()).map_err(|e| bad(&e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(&e.to_string()))
}

fn claims(subject: &str, name: &str, nats: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("sub".into(), Value::String(subject.to_owned()));
    map.insert("name".into(), Value::String(name.to_owned()));
    map.insert("nats".into(), nats);
    map
}

/// An nkey identity with the JWT describing it (operator or account).
#[derive(Clone)]
struct Entity {
    seed: String,
    public_key: String,
    jwt: String,
}

/// Options for a user JWT made by [`OperatorFixture::user_with`].
#[derive(Debug, Clone, Default)]
pub struct UserOptions {
    permissions: Option<Permissions>,
    expires: Option<SystemTime>,
    bearer_token: bool,
}

impl UserOptions {
    /// An unrestricted user whose JWT never expires.
    pub fn new() -> UserOptions {
        UserOptions::default()
    }

    /// Puts `pub`/`sub` permissions into the user JWT.
    pub fn permissions(mut self, permissions: Permissions) -> UserOptions {
        self.permissions = Some(permissions);
        self
    }

    /// Sets the JWT `exp` claim (whole seconds). The server disconnects the
    /// user when it passes and refuses it afterwards.
    pub fn expires_at(mut self, at: SystemTime) -> UserOptions {
        self.expires = Some(at);
        self
    }

    /// Sets `bearer_token: true`: the server does not require a nonce
    /// signature from this user.
    pub fn bearer_token(mut self, bearer: bool) -> UserOptions {
        self.bearer_token = bearer;
        self
    }
}

/// A complete operator-mode setup: an operator, a system account `SYS`, and
/// one application account (`APP`), all with freshly generated nkeys and
/// JWTs signed by this code. Start a server with
/// [`ServerBuilder::operator`](crate::ServerBuilder::operator), which writes
///
/// ```text
/// operator: "<dir>/operator.jwt"
/// system_account: "<SYS public key>"
/// resolver: MEMORY
/// resolver_preload: { "<SYS>": "<jwt>", "<APP>": "<jwt>" }
/// ```
///
/// Users need not be known to the server: create them at any time with
/// [`user`](OperatorFixture::user) (in `APP`) or
/// [`system_user`](OperatorFixture::system_user) (in `SYS`). The `APP`
/// account has unlimited limits, JetStream included.
#[derive(Clone)]
pub struct OperatorFixture {
    operator: Entity,
    system_account: Entity,
    account: Entity,
}

impl fmt::Debug for OperatorFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorFixture")
            .field("operator", &self.operator.public_key)
            .field("system_account", &self.system_account.public_key)
            .field("account", &self.account.public_key)
            .finish()
    }
}

/// Account limits with everything unlimited; `jetstream` adds unlimited
/// JetStream storage (which enables JetStream for the account).
fn account_limits(jetstream: bool) -> Value {
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        let map = limits.as_object_mut().expect("object");
        for key in ["mem_storage", "disk_storage", "streams", "consumer"] {
            map.insert(key.into(), json!(-1));
        }
    }
    limits
}

impl Default for OperatorFixture {
    /// Same as [`OperatorFixture::new`]: generates fresh keys and JWTs (panics on failure).
    fn default() -> Self {
        Self::new()
    }
}

impl OperatorFixture {
    /// Generates the operator, `SYS` and `APP` keys and JWTs.
    pub fn generate() -> Result<OperatorFixture, HarnessError> {
        let op = KeyPair::new_operator();
        let sys = KeyPair::new_account();
        let app = KeyPair::new_account();
        let operator_jwt = encode_jwt(
            &op,
            claims(
                &op.public_key(),
                "harness-operator",
                json!({ "type": "operator", "version": 2, "system_account": sys.public_key() }),
            ),
        )?;
        let account_jwt = |kp: &KeyPair, name: &str, jetstream: bool| {
            encode_jwt(
                &op,
                claims(
                    &kp.public_key(),
                    name,
                    json!({
                        "type": "account",
                        "version": 2,
                        "limits": account_limits(jetstream),
                        "default_permissions": { "pub": {}, "sub": {} },
                    }),
                ),
            )
        };
        Ok(OperatorFixture {
            system_account: Entity {
                jwt: account_jwt(&sys, "SYS", false)?,
                seed: seed_of(&sys),
                public_key: sys.public_key(),
            },
            account: Entity { jwt: account_jwt(&app, "APP", true)?, seed: seed_of(&app), public_key: app.public_key() },
            operator: Entity { jwt: operator_jwt, seed: seed_of(&op), public_key: op.public_key() },
        })
    }

    /// Like [`generate`](OperatorFixture::generate).
    ///
    /// # Panics
    ///
    /// If signing fails (it does not with generated keys).
    #[track_caller]
    pub fn new() -> OperatorFixture {
        Self::generate().unwrap_or_else(|e| panic!("nats-server-harness: could not generate operator: {e}"))
    }

    /// The operator public key, `O...`.
    pub fn operator_public_key(&self) -> &str {
        &self.operator.public_key
    }

    /// The operator seed, `SO...`.
    pub fn operator_seed(&self) -> &str {
        &self.operator.seed
    }

    /// The self-signed operator JWT.
    pub fn operator_jwt(&self) -> &str {
        &self.operator.jwt
    }

    /// The system account public key, `A...`.
    pub fn system_account_public_key(&self) -> &str {
        &self.system_account.public_key
    }

    /// The system account JWT (signed by the operator).
    pub fn system_account_jwt(&self) -> &str {
        &self.system_account.jwt
    }

    /// The application account (`APP`) public key, `A...`.
    pub fn account_public_key(&self) -> &str {
        &self.account.public_key
    }

    /// The application account seed, `SA...` (signs user JWTs).
    pub fn account_seed(&self) -> &str {
        &self.account.seed
    }

    /// The application account JWT (signed by the operator).
    pub fn account_jwt(&self) -> &str {
        &self.account.jwt
    }

    /// A new unrestricted user in the `APP` account.
    pub fn user(&self, name: &str) -> Result<UserCreds, HarnessError> {
        self.user_with(name, UserOptions::new())
    }

    /// A new user in the `APP` account with these options.
    pub fn user_with(&self, name: &str, options: UserOptions) -> Result<UserCreds, HarnessError> {
        make_user(&self.account, name, options)
    }

    /// A new unrestricted user in the system account (for `$SYS` requests).
    pub fn system_user(&self, name: &str) -> Result<UserCreds, HarnessError> {
        make_user(&self.system_account, name, UserOptions::new())
    }

    /// Writes `operator.jwt` into `dir` and returns the config text.
    pub(crate) fn render_config(&self, dir: &Path) -> Result<String, HarnessError> {
        let operator_path = dir.join("operator.jwt");
        fs::write(&operator_path, &self.operator.jwt)?;
        let mut c = String::new();
        let _ = writeln!(c, "operator: {}", conf_quote(&operator_path.to_string_lossy()));
        let _ = writeln!(c, "system_account: {}", conf_quote(&self.system_account.public_key));
        c.push_str("resolver: MEMORY\nresolver_preload: {\n");
        for account in [&self.system_account, &self.account] {
            let _ = writeln!(c, "  {}: {}", conf_quote(&account.public_key), conf_quote(&account.jwt));
        }
        c.push_str("}\n");
        Ok(c)
    }
}

fn make_user(account: &Entity, name: &str, options: UserOptions) -> Result<UserCreds, HarnessError> {
    let account_kp = key_from_seed(&account.seed)?;
    let user = KeyPair::new_user();
    let permissions = options.permissions.unwrap_or_default();
    let mut nats = json!({
        "type": "user",
        "version": 2,
        "pub": Permissions::jwt_section(&permissions.publish_allow, &permissions.publish_deny),
        "sub": Permissions::jwt_section(&permissions.subscribe_allow, &permissions.subscribe_deny),
        "subs": -1,
        "data": -1,
        "payload": -1,
    });
    if options.bearer_token {
        nats["bearer_token"] = json!(true);
    }
    let mut claims = claims(&user.public_key(), name, nats);
    if let Some(at) = options.expires {
        let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        claims.insert("exp".into(), json!(secs));
    }
    let jwt = encode_jwt(&account_kp, claims)?;
    Ok(UserCreds {
        name: name.to_owned(),
        seed: seed_of(&user),
        public_key: user.public_key(),
        jwt,
        account: account.public_key.clone(),
    })
}

/// Renders a `.creds` file in the standard format (`nsc`/`nats.go`):
/// the user JWT between `-----BEGIN NATS USER JWT-----` /
/// `------END NATS USER JWT------`, a warning, then the seed between
/// `-----BEGIN USER NKEY SEED-----` / `------END USER NKEY SEED------`.
pub fn format_creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// A user of an operator-mode server: nkey seed, user JWT (signed by its
/// account) and the `.creds` rendering of both.
#[derive(Clone)]
pub struct UserCreds {
    name: String,
    seed: String,
    public_key: String,
    jwt: String,
    account: String,
}

impl fmt::Debug for UserCreds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCreds")
            .field("name", &self.name)
            .field("public_key", &self.public_key)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl UserCreds {
    /// The user name (the JWT `name` claim).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user seed, `SU...`.
    pub fn seed(&self) -> &str {
        &self.seed
    }

    /// The user public key, `U...` (the JWT subject).
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The user JWT (sent as `CONNECT {"jwt":..}`).
    pub fn jwt(&self) -> &str {
        &self.jwt
    }

    /// The public key of the account that signed the JWT.
    pub fn account_public_key(&self) -> &str {
        &self.account
    }

    /// The `.creds` file contents; see [`format_creds`].
    pub fn creds(&self) -> String {
        format_creds(&self.jwt, &self.seed)
    }

    /// Writes [`creds`](UserCreds::creds) to `path`.
    pub fn write_creds(&self, path: &Path) -> io::Result<()> {
        fs::write(path, self.creds())
    }

    /// Writes the creds to `user.creds` in a new temp dir owned by the
    /// returned value (removed on drop).
    pub fn creds_file(&self) -> Result<CredsFile, HarnessError> {
        let dir = TempDir::new("nats-harness-creds")?;
        let path = dir.path().join("user.creds");
        self.write_creds(&path)?;
        Ok(CredsFile { path, _dir: dir })
    }

    /// Signs an `INFO` `nonce` with the user seed; see [`sign_nonce`].
    pub fn sign_nonce(&self, nonce: &str) -> String {
        sign_nonce(&self.seed, nonce).expect("own seed is valid")
    }
}

/// A `.creds` file in a temp dir that is removed when this value is dropped.
#[derive(Debug)]
pub struct CredsFile {
    path: PathBuf,
    _dir: TempDir,
}

impl CredsFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
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
