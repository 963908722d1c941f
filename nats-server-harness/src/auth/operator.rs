//! Operator mode: an operator, an account and users as signed JWTs, the memory resolver's config, and
//! `.creds` files.

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use nkeys::KeyPair;
use serde_json::{json, Map, Value};

use super::{key_from_seed, nkey_error, seed_of, sign_nonce, Permissions};
use crate::util::{conf_quote, TempDir};
use crate::HarnessError;

/// The JWT header nats-server expects for v2 claims.
pub(super) const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

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
