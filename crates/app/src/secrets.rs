//! Random secrets and their hashes. Tokens carry 256 bits of entropy, so a plain SHA-256 is the
//! right stored form (a slow hash would only slow down every request).

use sha2::{Digest as _, Sha256};

/// A new random secret with a readable prefix (`seva_...`), 64 hex characters of entropy.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    // The operating system's generator failing is unrecoverable for a server that issues keys.
    getrandom::fill(&mut bytes).expect("the operating system's random generator is available");
    format!("{prefix}{}", hex::encode(bytes))
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
