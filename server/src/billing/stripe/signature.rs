//! Stripe's webhook signature, `Stripe-Signature: t=<unix time>,v1=<hex>`: HMAC-SHA256 of
//! `"{t}.{raw body}"` with the endpoint's secret. The simulator signs its deliveries with
//! [`header`]; `POST /webhooks/stripe` checks them with [`verify`], as Stripe's libraries do
//! (any `v1` may match; other schemes are ignored; 300 s tolerance either way).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::clock::{hex, unhex};

/// How far the signature's timestamp may be from Nest's clock, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=`, a `t` that is not a number, or a part without `=`.
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    /// No `v1` is the HMAC of this body with this secret.
    #[error("the signature does not match")]
    Mismatch,
    /// The signature matches but was made more than [`TOLERANCE_SECS`] away from now.
    #[error("the signature's timestamp {0} is outside the 300 s tolerance")]
    Expired(i64),
}

fn mac(secret: &str, t: i64, payload: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac
}

/// The `Stripe-Signature` header for `payload` signed at `t`.
pub fn header(secret: &str, t: i64, payload: &str) -> String {
    format!(
        "t={t},v1={}",
        hex(&mac(secret, t, payload).finalize().into_bytes())
    )
}

/// Checks `header` against `payload` and `secret` at Nest's time `now` (unix seconds).
pub fn verify(header: &str, secret: &str, payload: &str, now: i64) -> Result<(), SignatureError> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                t = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    let mac = mac(secret, t, payload);
    let matches = candidates
        .iter()
        .filter_map(|c| unhex(c))
        .any(|sig| mac.clone().verify_slice(&sig).is_ok());
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Expired(t));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn the_signature_is_stripes_hmac_of_time_dot_body() {
        // Computed independently: Python's hmac.new(b"whsec_test", b"1700000000.{}", sha256).
        assert_eq!(
            header("whsec_test", NOW, "{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn a_signature_made_with_the_secret_over_this_body_is_accepted() {
        let signed = header("whsec_a", NOW, r#"{"id":"evt_1"}"#);
        assert_eq!(
            verify(&signed, "whsec_a", r#"{"id":"evt_1"}"#, NOW + 300),
            Ok(())
        );
        assert_eq!(
            verify(&signed, "whsec_a", r#"{"id":"evt_1"}"#, NOW - 300),
            Ok(())
        );
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let good = header("whsec_a", NOW, "{}");
        let v1 = good.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        let header = format!("t={NOW}, v0=abc, v1=zz, v1={}, v1=00", v1);
        assert_eq!(verify(&header, "whsec_a", "{}", NOW), Ok(()));
    }

    #[test]
    fn a_tampered_body_a_wrong_secret_or_no_v1_is_a_mismatch() {
        let signed = header("whsec_a", NOW, "{}");
        assert_eq!(
            verify(&signed, "whsec_a", "{ }", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&signed, "whsec_b", "{}", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&format!("t={NOW}"), "whsec_a", "{}", NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_signature_301_seconds_away_is_expired() {
        let old = header("whsec_a", NOW - 301, "{}");
        assert_eq!(
            verify(&old, "whsec_a", "{}", NOW),
            Err(SignatureError::Expired(NOW - 301))
        );
        let ahead = header("whsec_a", NOW + 301, "{}");
        assert_eq!(
            verify(&ahead, "whsec_a", "{}", NOW),
            Err(SignatureError::Expired(NOW + 301))
        );
    }

    #[test]
    fn a_header_without_a_time_or_with_a_bare_part_is_malformed() {
        for bad in ["v1=00", "t=soon,v1=00", "t=1,v1", ""] {
            assert_eq!(
                verify(bad, "whsec_a", "{}", NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
