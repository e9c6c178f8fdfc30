//! Password hashing (argon2id, off the async runtime's worker threads) and the strength rule.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// argon2id with 19 MiB of memory, 2 iterations, 1 lane (OWASP's baseline).
fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Shortest accepted password.
pub const MIN_LEN: usize = 12;
/// Longest accepted password (bounds the hashing work an attacker can ask for).
pub const MAX_LEN: usize = 128;

/// Checks the strength rule: 12–128 characters, at least two kinds of character (letters,
/// digits, symbols), and not containing the email's name part.
pub fn check_strength(password: &str, email: &str) -> Result<()> {
    let fail = |message: &str| {
        Err(Error::Validation {
            field: "password",
            message: message.to_owned(),
        })
    };
    let len = password.chars().count();
    if len < MIN_LEN {
        return fail("must be at least 12 characters long");
    }
    if len > MAX_LEN {
        return fail("must be at most 128 characters long");
    }
    let letters = password.chars().any(char::is_alphabetic);
    let digits = password.chars().any(|c| c.is_ascii_digit());
    let symbols = password.chars().any(|c| !c.is_alphanumeric());
    if [letters, digits, symbols].iter().filter(|x| **x).count() < 2 {
        return fail("must mix at least two of: letters, digits, symbols");
    }
    if password
        .chars()
        .collect::<std::collections::HashSet<_>>()
        .len()
        < 5
    {
        return fail("is too repetitive");
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if local.len() >= 3 && password.to_lowercase().contains(&local) {
        return fail("must not contain your email address");
    }
    Ok(())
}

/// How long a hashing request waits for a free core before it is answered "busy".
pub const QUEUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The `Retry-After` a busy answer suggests, in seconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// One permit per core: at most that many argon2 computations (19 MiB each) run at once, so
/// a burst of logins costs bounded memory and queues instead.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

/// Waits (at most [`QUEUE_TIMEOUT`]) for a hashing permit; `Busy` when none came.
async fn hashing_permit() -> Result<tokio::sync::SemaphorePermit<'static>> {
    match tokio::time::timeout(QUEUE_TIMEOUT, hashing_permits().acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(closed)) => Err(Error::Internal(format!("hashing permits: {closed}"))),
        Err(_) => Err(Error::Busy {
            retry_after_secs: BUSY_RETRY_AFTER_SECS,
        }),
    }
}

/// Hashes a password on a blocking thread (waiting for a permit first).
pub async fn hash(password: String) -> Result<String> {
    let _permit = hashing_permit().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&random_salt())
            .map_err(|e| Error::Internal(format!("salt: {e}")))?;
        argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(format!("hashing task: {e}")))?
}

/// Verifies a password against a stored hash on a blocking thread. `None` as the hash still
/// does the full work against a fixed dummy hash, so unknown accounts take as long as known ones.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    let _permit = hashing_permit().await?;
    tokio::task::spawn_blocking(move || {
        let dummy = dummy_hash();
        let (phc, real) = match stored.as_deref() {
            Some(h) => (h, true),
            None => (dummy.as_str(), false),
        };
        let parsed =
            PasswordHash::new(phc).map_err(|e| Error::Internal(format!("stored hash: {e}")))?;
        let ok = argon2()?
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && real)
    })
    .await
    .map_err(|e| Error::Internal(format!("verification task: {e}")))?
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    #[allow(clippy::expect_used)] // see clock::random_hex: no fallback for a failing OS RNG
    getrandom::fill(&mut salt).expect("the operating system's random number generator failed");
    salt
}

/// A hash with the same parameters as real ones, computed once per process.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::encode_b64(&[7u8; 16]).ok();
            salt.and_then(|salt| {
                argon2()
                    .ok()?
                    .hash_password(b"not a real password", &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_mixed_password_is_strong_enough() {
        assert!(check_strength("correct horse battery 9", "ops@nest.test").is_ok());
    }

    #[test]
    fn short_single_class_repetitive_or_email_passwords_are_refused() {
        for bad in [
            "short1!",
            "onlylettersinhere",
            "aaaaaaaaaaaa1",
            "my-ops-account-2026",
        ] {
            assert!(
                check_strength(bad, "ops-account@nest.test").is_err(),
                "{bad} should be refused"
            );
        }
        assert!(
            check_strength(&"ab1".repeat(50), "x@y.z").is_err(),
            "too long"
        );
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let h = hash("correct horse battery 9".to_owned()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify("correct horse battery 9".to_owned(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("wrong horse battery 9".to_owned(), Some(h))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        assert!(
            !verify("not a real password".to_owned(), None)
                .await
                .unwrap()
        );
    }
}
