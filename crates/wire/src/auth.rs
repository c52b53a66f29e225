//! Password scrambles of mysql_native_password and caching_sha2_password, for both sides:
//! computing a client's answer to a nonce and checking one.

use sha1::{Digest, Sha1};
use sha2::Sha256;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// SHA1(SHA1(password)): what MySQL stores for mysql_native_password (`*HEX` in hex).
pub fn native_hash(password: &[u8]) -> [u8; 20] {
    sha1(&[&sha1(&[password])])
}

/// Parses a `*`-prefixed 40-hex-digit native password hash (as in mysql.user or users.json).
pub fn parse_native_hash(text: &str) -> Option<[u8; 20]> {
    let hex = text.strip_prefix('*').unwrap_or(text);
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The client's mysql_native_password answer: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))).
/// Empty for an empty password, as clients send.
pub fn native_scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha1(&[password]);
    let stage2 = sha1(&[&stage1]);
    let mask = sha1(&[nonce, &stage2]);
    stage1.iter().zip(mask).map(|(a, b)| a ^ b).collect()
}

/// Checks a mysql_native_password answer against the stored SHA1(SHA1(pw)). `None` as the
/// stored hash means the account has an empty password.
pub fn verify_native(stored: Option<&[u8; 20]>, nonce: &[u8], response: &[u8]) -> bool {
    let Some(stored) = stored else {
        return response.is_empty();
    };
    if response.len() != 20 {
        return false;
    }
    let mask = sha1(&[nonce, stored]);
    let stage1: Vec<u8> = response.iter().zip(mask).map(|(a, b)| a ^ b).collect();
    constant_time_eq(&sha1(&[&stage1]), stored)
}

/// The client's caching_sha2_password fast-auth answer:
/// SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce). Empty for an empty password.
pub fn sha2_scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha256(&[password]);
    let stage2 = sha256(&[&stage1]);
    let mask = sha256(&[&stage2, nonce]);
    stage1.iter().zip(mask).map(|(a, b)| a ^ b).collect()
}

/// Checks a caching_sha2_password fast-auth answer against the cleartext password.
pub fn verify_sha2(password: &[u8], nonce: &[u8], response: &[u8]) -> bool {
    constant_time_eq(&sha2_scramble(password, nonce), response)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh 20-byte nonce of printable-range bytes; NUL would end the string early in the
/// greeting, and some clients mishandle '$'.
pub fn new_scramble() -> [u8; 20] {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut out = [0u8; 20];
    for byte in &mut out {
        *byte = loop {
            let candidate = rng.gen_range(1u8..=127);
            if candidate != b'$' {
                break candidate;
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_scramble_verifies_only_the_right_password() {
        let nonce = new_scramble();
        let stored = native_hash(b"secret");
        let answer = native_scramble(b"secret", &nonce);
        assert!(verify_native(Some(&stored), &nonce, &answer));
        assert!(!verify_native(
            Some(&stored),
            &nonce,
            &native_scramble(b"Secret", &nonce)
        ));
        assert!(!verify_native(Some(&stored), &new_scramble(), &answer));
        assert!(verify_native(None, &nonce, b""));
        assert!(!verify_native(None, &nonce, &answer));
        assert!(!verify_native(Some(&stored), &nonce, b""));
    }

    #[test]
    fn native_hash_matches_mysql_password_function() {
        // PASSWORD('secret') in MySQL/MariaDB.
        let known = parse_native_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7").unwrap();
        assert_eq!(native_hash(b"secret"), known);
        assert_eq!(parse_native_hash("*XYZ"), None);
        assert_eq!(
            parse_native_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EEZ"),
            None
        );
    }

    #[test]
    fn sha2_scramble_verifies_only_the_right_password() {
        let nonce = new_scramble();
        let answer = sha2_scramble(b"pw", &nonce);
        assert_eq!(answer.len(), 32);
        assert!(verify_sha2(b"pw", &nonce, &answer));
        assert!(!verify_sha2(b"pw2", &nonce, &answer));
        assert!(verify_sha2(b"", &nonce, b""));
    }

    #[test]
    fn scramble_has_no_nul_or_dollar() {
        for _ in 0..100 {
            let s = new_scramble();
            assert!(s.iter().all(|&b| b != 0 && b != b'$' && b < 128));
        }
    }
}
