//! The API keys: several, each with an id, held as SHA-256 digests only, so that a key can be
//! added, rotated or revoked by changing the set (no key in the configuration, the code or the
//! logs). The caller's key id goes to the request log and the access audit; the key never does.
//!
//! Forms:
//! - entries `id:sha256hex,id:sha256hex` (`MEDREC_API_KEYS`);
//! - a JSON object `{"id": "sha256hex", ...}` (the API key secret in the cloud);
//! - one plain key with its id ([`ApiKeys::plain`]; `MEDREC_API_KEY` locally, id `local`).
//!
//! `medrec api-key hash` prints the digest of a key read from stdin.

use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The id given to the plain `MEDREC_API_KEY` key.
pub const LOCAL_KEY_ID: &str = "local";

/// The most keys a set holds: every request is compared with each of them.
pub const MAX_KEYS: usize = 64;

/// The id of the key a request carried (a request extension, and a response one for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(pub Arc<str>);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of API keys by id, as SHA-256 digests.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(Arc<str>, [u8; 32])>,
}

/// Ids, never digests.
impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(id, _)| id))
            .finish()
    }
}

/// The lower-case hex SHA-256 of a key: what the entries and the secret hold.
pub fn key_digest_hex(key: &[u8]) -> String {
    Sha256::digest(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check_id(id: &str) -> anyhow::Result<()> {
    ensure!(
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
        "the API key id {id:?} is not 1 to 64 of A-Z a-z 0-9 . _ -"
    );
    Ok(())
}

fn parse_digest(id: &str, hex: &str) -> anyhow::Result<[u8; 32]> {
    let hex = hex.trim();
    ensure!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "the API key {id:?} is not a SHA-256 in hex (64 hex digits; `medrec api-key hash`)"
    );
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(digest)
}

impl ApiKeys {
    /// No keys: add some before building a router (which refuses an empty set).
    pub fn new() -> ApiKeys {
        ApiKeys::default()
    }

    /// Adds the key with this id and digest; ids are unique.
    pub fn insert_digest(&mut self, id: &str, digest: [u8; 32]) -> anyhow::Result<()> {
        check_id(id)?;
        ensure!(
            !self.keys.iter().any(|(known, _)| &**known == id),
            "the API key id {id:?} is given twice"
        );
        ensure!(self.keys.len() < MAX_KEYS, "more than {MAX_KEYS} API keys");
        self.keys.push((Arc::from(id), digest));
        Ok(())
    }

    /// Adds a plain key (hashed here; the key itself is not kept). An empty key is refused: it
    /// would let every request without one in.
    pub fn insert_plain(&mut self, id: &str, key: &str) -> anyhow::Result<()> {
        ensure!(!key.is_empty(), "the API key is empty");
        self.insert_digest(id, Sha256::digest(key.as_bytes()).into())
    }

    /// One plain key with this id.
    pub fn plain(id: &str, key: &str) -> anyhow::Result<ApiKeys> {
        let mut keys = ApiKeys::new();
        keys.insert_plain(id, key)?;
        Ok(keys)
    }

    /// Adds `id:sha256hex` entries separated by commas (whitespace and empty entries ignored).
    pub fn insert_entries(&mut self, entries: &str) -> anyhow::Result<()> {
        for entry in entries.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, hex) = entry
                .split_once(':')
                .with_context(|| "an API key entry is not id:sha256hex".to_string())?;
            let id = id.trim();
            self.insert_digest(id, parse_digest(id, hex)?)?;
        }
        Ok(())
    }

    /// `id:sha256hex,...` ([`ApiKeys::insert_entries`]).
    pub fn from_entries(entries: &str) -> anyhow::Result<ApiKeys> {
        let mut keys = ApiKeys::new();
        keys.insert_entries(entries)?;
        Ok(keys)
    }

    /// Adds the keys of a JSON object `{"id": "sha256hex", ...}`.
    pub fn insert_json(&mut self, json: &serde_json::Value) -> anyhow::Result<()> {
        let Some(object) = json.as_object() else {
            bail!("the API keys are not a JSON object of id: sha256hex");
        };
        for (id, hex) in object {
            let hex = hex
                .as_str()
                .with_context(|| format!("the API key {id:?} is not a string"))?;
            self.insert_digest(id, parse_digest(id, hex)?)?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids, in the order added.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| &**id)
    }

    /// The id of the key `given` is, if any. The given key is hashed and compared with every
    /// digest in constant time, so neither the lengths nor which key matched change the time.
    pub fn check(&self, given: &[u8]) -> Option<KeyId> {
        let given: [u8; 32] = Sha256::digest(given).into();
        // Index + 1 of the matching key, 0 for none; every key is compared.
        let mut found = 0u32;
        for (i, (_, digest)) in self.keys.iter().enumerate() {
            let matches = given.ct_eq(digest);
            found = u32::conditional_select(&found, &(i as u32 + 1), matches);
        }
        (found as usize)
            .checked_sub(1)
            .map(|i| KeyId(self.keys[i].0.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "alpha-key-0001";
    const B: &str = "bravo-key-0002";

    #[test]
    fn the_digest_is_sha256_hex() {
        assert_eq!(
            key_digest_hex(b"test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn entries_json_and_plain_keys_find_their_ids() {
        let entries = format!(
            " ops:{} , ds:{},",
            key_digest_hex(A.as_bytes()),
            key_digest_hex(B.as_bytes()).to_uppercase()
        );
        let keys = ApiKeys::from_entries(&entries).unwrap();
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["ops", "ds"]);
        assert_eq!(keys.check(A.as_bytes()).unwrap().as_str(), "ops");
        assert_eq!(keys.check(B.as_bytes()).unwrap().as_str(), "ds");
        for wrong in [
            "",
            "alpha-key-000",
            "alpha-key-00011",
            &key_digest_hex(A.as_bytes()),
        ] {
            assert_eq!(keys.check(wrong.as_bytes()), None, "{wrong}");
        }

        let mut json = ApiKeys::new();
        json.insert_json(&serde_json::json!({"ops": key_digest_hex(A.as_bytes())}))
            .unwrap();
        json.insert_plain(LOCAL_KEY_ID, B).unwrap();
        assert_eq!(json.check(A.as_bytes()).unwrap().as_str(), "ops");
        assert_eq!(json.check(B.as_bytes()).unwrap().as_str(), "local");
        // Debug shows ids only.
        assert_eq!(format!("{json:?}"), r#"["ops", "local"]"#);
    }

    #[test]
    fn bad_sets_are_refused() {
        let hex = key_digest_hex(A.as_bytes());
        for bad in [
            "ops".to_owned(),
            format!("ops:{}", &hex[1..]),
            format!("ops:{}x", &hex[1..]),
            format!("ops:{hex},ops:{hex}"),
            format!("o p:{hex}"),
            format!(":{hex}"),
            format!("{}:{hex}", "x".repeat(65)),
        ] {
            assert!(ApiKeys::from_entries(&bad).is_err(), "{bad}");
        }
        assert!(ApiKeys::plain("local", "").is_err());
        assert!(ApiKeys::new()
            .insert_json(&serde_json::json!(["x"]))
            .is_err());
        assert!(ApiKeys::new()
            .insert_json(&serde_json::json!({"ops": 1}))
            .is_err());
    }
}
