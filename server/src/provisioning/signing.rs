//! Signed requests from Nest to a VPS (the redeploy's `POST :3000/api/self-update`): an
//! HMAC-SHA256, keyed with the VPS's instance secret, over the method, the path, a timestamp
//! and the body's SHA-256, so the secret itself never crosses the network (the request goes
//! over plain HTTP to the server's public address). The VPS accepts a signature only within
//! [`MAX_SKEW_SECS`] of its clock.
//!
//! Headers: `X-Nest-Timestamp: <unix seconds>` and `X-Nest-Signature: v1=<hex>`, where the
//! signed text is `NEST-HMAC-SHA256-V1\n<METHOD>\n<path>\n<timestamp>\n<hex sha256(body)>`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::clock::{hex, unhex};

/// The header carrying the signing time (unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-nest-timestamp";
/// The header carrying the signature (`v1=<hex>`).
pub const SIGNATURE_HEADER: &str = "x-nest-signature";
/// How far the signing time may be from the verifier's clock, either way.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp or signature header is absent or malformed.
    #[error("the request is not signed")]
    Missing,
    /// The timestamp is outside the accepted window (a replay, or a wrong clock).
    #[error("the signature's timestamp is outside the accepted window")]
    Stale,
    /// The signature does not match (another key, or a changed request).
    #[error("the signature does not match")]
    Mismatch,
}

fn string_to_sign(method: &str, path: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "NEST-HMAC-SHA256-V1\n{}\n{path}\n{timestamp}\n{}",
        method.to_ascii_uppercase(),
        hex(&Sha256::digest(body))
    )
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

/// The `X-Nest-Signature` value for a request.
pub fn sign(secret: &str, method: &str, path: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(string_to_sign(method, path, timestamp, body).as_bytes());
    format!("v1={}", hex(&mac.finalize().into_bytes()))
}

/// Checks a request's signature headers at `now` (unix seconds), in constant time.
pub fn verify(
    secret: &str,
    method: &str,
    path: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp
        .and_then(|t| t.trim().parse().ok())
        .ok_or(SignatureError::Missing)?;
    let given = signature
        .and_then(|s| s.trim().strip_prefix("v1="))
        .and_then(unhex)
        .ok_or(SignatureError::Missing)?;
    if (now - timestamp).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let mut mac = mac(secret);
    mac.update(string_to_sign(method, path, timestamp, body).as_bytes());
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    #[test]
    fn a_signature_verifies_for_its_request_only() {
        let sig = sign("secret", "POST", "/api/self-update", NOW, b"");
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64, "{sig}");
        let ts = NOW.to_string();
        let check = |secret: &str, method: &str, path: &str, body: &[u8]| {
            verify(secret, method, path, Some(&ts), Some(&sig), body, NOW + 10)
        };
        assert_eq!(check("secret", "POST", "/api/self-update", b""), Ok(()));
        assert_eq!(check("secret", "post", "/api/self-update", b""), Ok(()));
        for (secret, method, path, body) in [
            ("other", "POST", "/api/self-update", &b""[..]),
            ("secret", "GET", "/api/self-update", b""),
            ("secret", "POST", "/api/other", b""),
            ("secret", "POST", "/api/self-update", b"x"),
        ] {
            assert_eq!(
                check(secret, method, path, body),
                Err(SignatureError::Mismatch),
                "{secret} {method} {path}"
            );
        }
    }

    #[test]
    fn an_old_future_or_missing_signature_is_refused() {
        let sig = sign("secret", "POST", "/p", NOW, b"");
        let ts = NOW.to_string();
        let at = |now: i64| verify("secret", "POST", "/p", Some(&ts), Some(&sig), b"", now);
        assert_eq!(at(NOW + MAX_SKEW_SECS), Ok(()));
        assert_eq!(at(NOW + MAX_SKEW_SECS + 1), Err(SignatureError::Stale));
        assert_eq!(at(NOW - MAX_SKEW_SECS - 1), Err(SignatureError::Stale));
        assert_eq!(
            verify("secret", "POST", "/p", None, Some(&sig), b"", NOW),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(
                "secret",
                "POST",
                "/p",
                Some(&ts),
                Some("Bearer secret"),
                b"",
                NOW
            ),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn the_secret_is_not_in_the_signature() {
        let secret = "instance-secret-0123456789abcdef";
        let sig = sign(secret, "POST", "/api/self-update", NOW, b"");
        assert!(!sig.contains(secret));
    }
}
