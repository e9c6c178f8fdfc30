//! Password hashing (argon2id, on a few dedicated threads, one per core, off the async
//! runtime's) and the strength rule.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
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

/// One per core: the hashing threads, and the permits to use them.
fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// One permit per core: at most that many argon2 computations (19 MiB each) run at once, so
/// a burst of logins costs bounded memory and queues instead.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(hashing_slots()))
}

type HashJob = Box<dyn FnOnce() + Send>;

/// The hashing threads: long-lived, one per permit. argon2's 19 MiB stays in these threads'
/// allocator arenas and is reused by the next hash, where `spawn_blocking`'s ever-changing
/// threads each kept a copy (measured: 400 MB after twenty hashes, for two at a time).
fn hashing_queue() -> &'static std::sync::mpsc::Sender<HashJob> {
    static QUEUE: std::sync::OnceLock<std::sync::mpsc::Sender<HashJob>> =
        std::sync::OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..hashing_slots() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("nest-argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error.detail = %e, "could not start a password hashing thread");
            }
        }
        tx
    })
}

/// Runs `work` on a hashing thread, after waiting for a permit.
async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let _permit = hashing_permit().await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    hashing_queue()
        .send(Box::new(move || {
            let _ = tx.send(work());
        }))
        .map_err(|_| Error::Internal("the password hashing threads are gone".to_owned()))?;
    match tokio::time::timeout(std::time::Duration::from_secs(60), rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Error::Internal(
            "a password hashing thread stopped".to_owned(),
        )),
        Err(_) => Err(Error::Internal(
            "password hashing did not finish".to_owned(),
        )),
    }
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

/// Hashes a password on a hashing thread (waiting for a permit first).
pub async fn hash(password: String) -> Result<String> {
    on_hashing_thread(move || {
        let salt = SaltString::encode_b64(&random_salt())
            .map_err(|e| Error::Internal(format!("salt: {e}")))?;
        argon2()?
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))
    })
    .await
}

/// Verifies a password against a stored hash on a hashing thread. `None` as the hash still
/// does the full work against a fixed dummy hash, so unknown accounts take as long as known ones.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    on_hashing_thread(move || {
        let dummy = dummy_hash();
        let (phc, real) = match stored.as_deref() {
            Some(h) => (h, true),
            None => (dummy.as_str(), false),
        };
        let parsed =
            PasswordHash::new(phc).map_err(|e| Error::Internal(format!("stored hash: {e}")))?;
        let ok = verify_in_reused_memory(password.as_bytes(), &parsed)?;
        Ok(ok && real)
    })
    .await
}

thread_local! {
    /// argon2's working memory on this hashing thread: allocated by the first verification,
    /// reused by every later one (so memory stays at one block set per hashing thread).
    static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Verifies `password` against a parsed PHC hash, computing argon2 in this thread's reused
/// memory; the comparison is constant-time.
fn verify_in_reused_memory(password: &[u8], phc: &PasswordHash<'_>) -> Result<bool> {
    let bad = |what: &str| Error::Internal(format!("stored hash: {what}"));
    let params = Params::try_from(phc).map_err(|e| bad(&e.to_string()))?;
    let algorithm = Algorithm::try_from(phc.algorithm).map_err(|e| bad(&e.to_string()))?;
    let version = match phc.version {
        Some(v) => Version::try_from(v).map_err(|e| bad(&e.to_string()))?,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return Err(bad("no salt or no hash"));
    };
    let mut salt_buf = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| bad(&e.to_string()))?;
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let hasher = Argon2::new(algorithm, version, params);
    MEMORY
        .with_borrow_mut(|memory| {
            if memory.len() < blocks {
                memory.resize(blocks, argon2::Block::default());
            }
            hasher.hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
        })
        .map_err(|e| Error::Internal(format!("argon2 verify: {e}")))?;
    let computed = argon2::password_hash::Output::new(&out).map_err(|e| bad(&e.to_string()))?;
    Ok(computed == expected)
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
