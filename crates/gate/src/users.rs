//! Client users from a Vitess-format static `users.json`:
//! `{"user": [{"Password": "pw", "UserData": "..."}]}` or with
//! `"MysqlNativePassword": "*<40 hex>"` (SHA1(SHA1(pw)), as MySQL stores it).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use tessera_wire::{UserCredential, UserStore};

/// A fixed set of users, looked up by name.
#[derive(Debug, Clone, Default)]
pub struct StaticUsers {
    users: HashMap<String, UserEntry>,
}

#[derive(Debug, Clone)]
struct UserEntry {
    credential: Credential,
    #[allow(dead_code)] // kept for later ACLs keyed by UserData
    user_data: String,
}

#[derive(Debug, Clone)]
enum Credential {
    Cleartext(String),
    NativeHash([u8; 20]),
}

#[derive(Deserialize)]
struct JsonEntry {
    #[serde(rename = "Password", default)]
    password: Option<String>,
    #[serde(rename = "MysqlNativePassword", default)]
    mysql_native_password: Option<String>,
    #[serde(rename = "UserData", default)]
    user_data: Option<String>,
    #[serde(rename = "SourceHost", default)]
    source_host: Option<String>,
}

impl StaticUsers {
    /// The default when no users file is given: user `user` with an empty password.
    pub fn default_user() -> Self {
        let mut users = HashMap::new();
        users.insert(
            "user".to_string(),
            UserEntry {
                credential: Credential::Cleartext(String::new()),
                user_data: "user".to_string(),
            },
        );
        Self { users }
    }

    /// Parses the JSON text of a users file.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let raw: HashMap<String, Vec<JsonEntry>> = serde_json::from_str(text)
            .context("users file is not a JSON object of user -> [entries]")?;
        let mut users = HashMap::new();
        for (name, entries) in raw {
            // Entries restricted to a source host are for sockets we do not
            // serve; the first unrestricted entry is the user's credential.
            let Some(entry) = entries
                .iter()
                .find(|e| e.source_host.as_deref().unwrap_or("").is_empty())
            else {
                bail!("user {name:?} has no entry usable over TCP");
            };
            let credential = match (&entry.mysql_native_password, &entry.password) {
                (Some(hash), _) if !hash.is_empty() => Credential::NativeHash(
                    parse_native_hash(hash)
                        .with_context(|| format!("user {name:?}: bad MysqlNativePassword"))?,
                ),
                (_, Some(pw)) => Credential::Cleartext(pw.clone()),
                (_, None) => Credential::Cleartext(String::new()),
            };
            users.insert(
                name.clone(),
                UserEntry {
                    credential,
                    user_data: entry.user_data.clone().unwrap_or(name),
                },
            );
        }
        Ok(Self { users })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// `*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9` -> 20 bytes.
fn parse_native_hash(text: &str) -> anyhow::Result<[u8; 20]> {
    let hex = text.strip_prefix('*').unwrap_or(text);
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("expected '*' followed by 40 hex digits, got {text:?}");
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    Ok(out)
}

impl UserStore for StaticUsers {
    fn lookup(&self, user: &str) -> Option<UserCredential> {
        self.users.get(user).map(|e| match &e.credential {
            Credential::Cleartext(pw) => UserCredential::Cleartext(pw.clone()),
            Credential::NativeHash(h) => UserCredential::NativeHash(*h),
        })
    }
}

/// Reads a Vitess-format `users.json`.
pub fn load_users_json(path: &Path) -> anyhow::Result<StaticUsers> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading users file {}", path.display()))?;
    StaticUsers::from_json(&text).with_context(|| format!("users file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vitess_format() {
        let users = StaticUsers::from_json(
            r#"{"user1": [{"Password": "pw", "UserData": "user1"}],
                "user2": [{"MysqlNativePassword": "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9", "UserData": "x"}],
                "user3": [{"Password": "", "SourceHost": "localhost"}, {"Password": "tcp"}]}"#,
        )
        .unwrap();
        assert_eq!(users.len(), 3);
        assert!(matches!(users.lookup("user1"), Some(UserCredential::Cleartext(p)) if p == "pw"));
        match users.lookup("user2") {
            Some(UserCredential::NativeHash(h)) => {
                assert_eq!(h[0], 0x6B);
                assert_eq!(h[19], 0xD9);
            }
            _ => panic!("user2 should have a native hash"),
        }
        assert!(matches!(users.lookup("user3"), Some(UserCredential::Cleartext(p)) if p == "tcp"));
        assert!(users.lookup("nobody").is_none());
    }

    #[test]
    fn rejects_bad_files() {
        assert!(StaticUsers::from_json("[]").is_err());
        assert!(StaticUsers::from_json(r#"{"u": [{"MysqlNativePassword": "*12"}]}"#).is_err());
        assert!(StaticUsers::from_json(r#"{"u": [{"SourceHost": "localhost"}]}"#).is_err());
        assert!(StaticUsers::from_json("{not json").is_err());
        assert!(load_users_json(Path::new("/nonexistent/users.json")).is_err());
    }

    #[test]
    fn default_user_has_empty_password() {
        let users = StaticUsers::default_user();
        assert!(matches!(users.lookup("user"), Some(UserCredential::Cleartext(p)) if p.is_empty()));
    }
}
