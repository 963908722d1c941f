//! Nonce-signing authentication: nkeys and JWT user credentials, turned into the core's credentials callback.
//!
//! A `.creds` file holds a user JWT and the user's nkey seed, each between marker lines. The seed signs the
//! server's nonce; the signature travels base64url-encoded without padding.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use data_encoding::BASE64URL_NOPAD;
use nats_proto::{Credentials, CredentialsCallback};
use nkeys::KeyPair;

use crate::Error;

/// A parsed `.creds` file: the user JWT and the seed. `Debug` shows neither.
pub struct UserCredentials {
    jwt: String,
    key: KeyPair,
}

impl fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCredentials").field("public_key", &self.key.public_key()).finish_non_exhaustive()
    }
}

impl UserCredentials {
    /// Parses the contents of a `.creds` file.
    pub fn parse(contents: &str) -> Result<Self, Error> {
        let jwt = block(contents, "JWT").ok_or_else(|| Error::Options("creds: no user JWT block".into()))?;
        let seed = block(contents, "SEED").ok_or_else(|| Error::Options("creds: no nkey seed block".into()))?;
        let key = key_from_seed(seed)?;
        if jwt.split('.').count() != 3 {
            return Err(Error::Options("creds: the JWT is not three dot-separated parts".into()));
        }
        Ok(Self { jwt: jwt.to_owned(), key })
    }

    /// Reads and parses a `.creds` file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let contents =
            std::fs::read_to_string(path).map_err(|e| Error::Options(format!("creds file {}: {e}", path.display())))?;
        Self::parse(&contents)
    }

    /// The user JWT.
    pub fn jwt(&self) -> &str {
        &self.jwt
    }

    /// The CONNECT fields for a server's nonce.
    pub fn sign(&self, nonce: Option<&str>) -> Result<Credentials, String> {
        let mut c = Credentials::default();
        c.jwt = Some(self.jwt.clone());
        c.sig = Some(sign(&self.key, nonce)?);
        Ok(c)
    }
}

/// The first non-empty line after a `-----BEGIN ... <kind>...-----` marker line.
fn block<'a>(contents: &'a str, kind: &str) -> Option<&'a str> {
    let mut lines = contents.lines().map(str::trim);
    lines.find(|l| l.starts_with("---") && l.contains("BEGIN") && l.contains(kind))?;
    lines.find(|l| !l.is_empty()).filter(|l| !l.starts_with("---"))
}

fn key_from_seed(seed: &str) -> Result<KeyPair, Error> {
    // The error text of a bad seed never includes the seed.
    KeyPair::from_seed(seed.trim()).map_err(|e| Error::Options(format!("nkey seed: {}", e.kind())))
}

fn sign(key: &KeyPair, nonce: Option<&str>) -> Result<String, String> {
    let nonce = nonce.ok_or("the server sent no nonce to sign")?;
    let sig = key.sign(nonce.as_bytes()).map_err(|e| format!("signing the nonce: {}", e.kind()))?;
    Ok(BASE64URL_NOPAD.encode(&sig))
}

/// A callback signing nonces with an nkey seed (nkey authentication without a JWT).
pub(crate) fn nkey_callback(seed: &str) -> Result<CredentialsCallback, Error> {
    let key = key_from_seed(seed)?;
    let public = key.public_key();
    Ok(Arc::new(move |nonce: Option<&str>| {
        let mut c = Credentials::default();
        c.nkey = Some(public.clone());
        c.sig = Some(sign(&key, nonce)?);
        Ok(c)
    }))
}

/// A callback that reads the creds file at every connect, so a rotated file is picked up; the file is read
/// once now so a bad path fails at once.
pub(crate) fn creds_file_callback(path: PathBuf) -> Result<CredentialsCallback, Error> {
    UserCredentials::from_file(&path)?;
    Ok(Arc::new(move |nonce: Option<&str>| UserCredentials::from_file(&path).map_err(|e| e.to_string())?.sign(nonce)))
}

/// A callback for creds given as a string.
pub(crate) fn creds_callback(contents: &str) -> Result<CredentialsCallback, Error> {
    let creds = UserCredentials::parse(contents)?;
    Ok(Arc::new(move |nonce: Option<&str>| creds.sign(nonce)))
}

/// A callback for a JWT and the seed that signs for it.
pub(crate) fn jwt_callback(jwt: &str, seed: &str) -> Result<CredentialsCallback, Error> {
    let creds = UserCredentials { jwt: jwt.to_owned(), key: key_from_seed(seed)? };
    Ok(Arc::new(move |nonce: Option<&str>| creds.sign(nonce)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds_text(jwt: &str, seed: &str) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        )
    }

    #[test]
    fn creds_parse_and_sign_verifiably() {
        let user = KeyPair::new_user();
        let seed = user.seed().unwrap();
        let creds = UserCredentials::parse(&creds_text("aaa.bbb.ccc", &seed)).unwrap();
        assert_eq!(creds.jwt(), "aaa.bbb.ccc");
        let c = creds.sign(Some("nonce-1")).unwrap();
        assert_eq!(c.jwt.as_deref(), Some("aaa.bbb.ccc"));
        let sig = BASE64URL_NOPAD.decode(c.sig.unwrap().as_bytes()).unwrap();
        let verifier = KeyPair::from_public_key(&user.public_key()).unwrap();
        verifier.verify(b"nonce-1", &sig).expect("the signature verifies with the user's public key");
        assert!(verifier.verify(b"nonce-2", &sig).is_err());
        let shown = format!("{creds:?}");
        assert!(!shown.contains(&seed) && !shown.contains("aaa.bbb"), "{shown}");
    }

    #[test]
    fn creds_errors_are_typed_and_do_not_leak_the_seed() {
        let e = UserCredentials::parse("nothing here").unwrap_err();
        assert!(matches!(&e, Error::Options(m) if m.contains("JWT")), "{e}");
        // A real seed with one character changed: its checksum no longer matches.
        let good = KeyPair::new_user().seed().unwrap();
        let flipped = if good.as_bytes()[10] == b'A' { 'B' } else { 'A' };
        let bad = &format!("{}{}{}", &good[..10], flipped, &good[11..]);
        let e = UserCredentials::parse(&creds_text("a.b.c", bad)).unwrap_err();
        assert!(matches!(&e, Error::Options(m) if m.contains("seed") && !m.contains(bad)), "{e}");
        let e = UserCredentials::parse(&creds_text("not-a-jwt", &KeyPair::new_user().seed().unwrap())).unwrap_err();
        assert!(matches!(&e, Error::Options(m) if m.contains("JWT")), "{e}");
    }

    #[test]
    fn nkey_callback_signs_the_nonce_and_needs_one() {
        let user = KeyPair::new_user();
        let cb = nkey_callback(&user.seed().unwrap()).unwrap();
        let c = cb(Some("xyz")).unwrap();
        assert_eq!(c.nkey.as_deref(), Some(user.public_key().as_str()));
        let sig = BASE64URL_NOPAD.decode(c.sig.unwrap().as_bytes()).unwrap();
        user.verify(b"xyz", &sig).unwrap();
        assert!(cb(None).unwrap_err().contains("nonce"));
        assert!(nkey_callback("SUnot-a-seed").is_err());
    }
}
