//! The four per-VPS secrets, generated with the OS CSPRNG and stored encrypted with
//! AES-256-GCM. The VPS id is the associated data (a ciphertext cannot be moved to another
//! VPS row) and each row records the id of the key that sealed it, so keys can rotate: the
//! current key seals, previous keys still open.
//!
//! The key comes from `NEST_SECRETS_KEY` (64 hex characters), or in local mode from
//! `<data dir>/secrets.key`, generated on first run with a warning.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::{hex, random_hex};

/// The secrets of one VPS. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpsSecrets {
    /// Authenticates Nest to the VPS (self-update endpoint).
    pub instance_secret: String,
    /// The self-hosted Convex backend's admin key.
    pub convex_admin_key: String,
    /// The MTA's API key.
    pub mta_api_key: String,
    /// Signs the MTA's webhooks.
    pub mta_webhook_secret: String,
}

impl fmt::Debug for VpsSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VpsSecrets([redacted])")
    }
}

impl VpsSecrets {
    /// Four fresh secrets of 32 random bytes each.
    pub fn generate() -> Self {
        Self {
            instance_secret: random_hex(32),
            convex_admin_key: format!("nest|{}", random_hex(32)),
            mta_api_key: random_hex(32),
            mta_webhook_secret: random_hex(32),
        }
    }
}

/// A sealed secret set, as stored in the `vpses` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Ciphertext with the GCM tag.
    pub ciphertext: Vec<u8>,
    /// The 96-bit nonce.
    pub nonce: Vec<u8>,
    /// Which key sealed it.
    pub key_id: String,
}

/// Why secrets could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The row names a key Nest does not have.
    #[error("the secrets were sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    /// Wrong key, wrong VPS, or tampered data.
    #[error("the secrets could not be decrypted (wrong key, wrong VPS or altered data)")]
    Decrypt,
    /// A key is malformed.
    #[error("{0}")]
    BadKey(String),
}

/// The keys that seal and open VPS secrets.
#[derive(Clone)]
pub struct SecretBox {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBox(current key {})", self.current)
    }
}

fn parse_key(hex_key: &str) -> Result<[u8; 32], SecretsError> {
    let hex_key = hex_key.trim();
    if hex_key.len() != 64 {
        return Err(SecretsError::BadKey(
            "a secrets key is 64 hexadecimal characters (32 bytes)".to_owned(),
        ));
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex_key[i * 2..i * 2 + 2], 16)
            .map_err(|_| SecretsError::BadKey("a secrets key must be hexadecimal".to_owned()))?;
    }
    Ok(key)
}

/// The id of a key: the first 8 hex characters of its SHA-256 (not secret).
fn key_id(key: &[u8; 32]) -> String {
    hex(&Sha256::digest(key)[..4])
}

impl SecretBox {
    /// A box sealing with `current` and also opening with `previous` (all 64-hex keys).
    pub fn new(current: &str, previous: &[String]) -> Result<Self, SecretsError> {
        let mut keys = HashMap::new();
        let current = parse_key(current)?;
        let current_id = key_id(&current);
        keys.insert(current_id.clone(), Aes256Gcm::new(&current.into()));
        for old in previous {
            let old = parse_key(old)?;
            keys.insert(key_id(&old), Aes256Gcm::new(&old.into()));
        }
        Ok(Self {
            current: current_id,
            keys,
        })
    }

    /// The key from `<data_dir>/secrets.key`, generated (mode 0600) if missing. Returns the
    /// box and whether the key was generated just now.
    pub fn from_key_file(path: &Path, previous: &[String]) -> anyhow::Result<(Self, bool)> {
        use anyhow::Context;
        let generated = if path.exists() {
            false
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("could not create {}", dir.display()))?;
            }
            write_private(path, &format!("{}\n", random_hex(32)))
                .with_context(|| format!("could not write {}", path.display()))?;
            true
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        let secret_box = Self::new(&text, previous)
            .with_context(|| format!("{} holds no valid key", path.display()))?;
        Ok((secret_box, generated))
    }

    /// The id of the key that seals.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Encrypts `secrets` for VPS `vps_id`.
    pub fn seal(&self, vps_id: i64, secrets: &VpsSecrets) -> Result<Sealed, SecretsError> {
        let plaintext = serde_json::to_vec(secrets).map_err(|_| SecretsError::Decrypt)?;
        self.seal_bytes(&aad(vps_id), &plaintext)
    }

    /// Decrypts the secrets of VPS `vps_id`.
    pub fn open(&self, vps_id: i64, sealed: &Sealed) -> Result<VpsSecrets, SecretsError> {
        let plaintext = self.open_bytes(&aad(vps_id), sealed)?;
        serde_json::from_slice(&plaintext).map_err(|_| SecretsError::Decrypt)
    }

    /// Encrypts `plaintext` with the current key, bound to `aad` (what it belongs to, e.g.
    /// `nest/user/7/totp`): it opens only with the same `aad`.
    pub fn seal_bytes(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, SecretsError> {
        let cipher = self
            .keys
            .get(&self.current)
            .ok_or_else(|| SecretsError::UnknownKey(self.current.clone()))?;
        let mut nonce = [0u8; 12];
        // The OS RNG failing means the machine cannot do cryptography at all.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut nonce).expect("the operating system's random number generator failed");
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SecretsError::Decrypt)?;
        Ok(Sealed {
            ciphertext,
            nonce: nonce.to_vec(),
            key_id: self.current.clone(),
        })
    }

    /// Decrypts what [`Self::seal_bytes`] sealed with the same `aad`.
    pub fn open_bytes(&self, aad: &[u8], sealed: &Sealed) -> Result<Vec<u8>, SecretsError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| SecretsError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.nonce.len() != 12 {
            return Err(SecretsError::Decrypt);
        }
        cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| SecretsError::Decrypt)
    }
}

/// Re-seals with the current key every VPS whose secrets were sealed with another key (after
/// a rotation: put the old key in `NEST_SECRETS_PREVIOUS_KEYS`, run `nest reseal-secrets`, then
/// drop it). One row per transaction; returns how many rows moved. Running it twice is harmless.
pub async fn reseal_all(
    db: &sea_orm::DatabaseConnection,
    secret_box: &SecretBox,
) -> Result<usize, crate::error::Error> {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

    use crate::entities::vpses;
    let stale = vpses::Entity::find()
        .filter(vpses::Column::SecretsKeyId.is_not_null())
        .filter(vpses::Column::SecretsKeyId.ne(secret_box.current_key_id()))
        .all(db)
        .await?;
    let mut moved = 0;
    for vps in stale {
        let (Some(ciphertext), Some(nonce), Some(key_id)) = (
            vps.secrets_ciphertext.clone(),
            vps.secrets_nonce.clone(),
            vps.secrets_key_id.clone(),
        ) else {
            continue;
        };
        let secrets = secret_box
            .open(
                vps.id,
                &Sealed {
                    ciphertext,
                    nonce,
                    key_id: key_id.clone(),
                },
            )
            .map_err(|e| crate::error::Error::Validation {
                field: "secrets",
                message: format!("VPS {}: {e}", vps.id),
            })?;
        let sealed =
            secret_box
                .seal(vps.id, &secrets)
                .map_err(|e| crate::error::Error::Validation {
                    field: "secrets",
                    message: format!("VPS {}: {e}", vps.id),
                })?;
        let mut active: vpses::ActiveModel = vps.into();
        active.secrets_ciphertext = Set(Some(sealed.ciphertext));
        active.secrets_nonce = Set(Some(sealed.nonce));
        active.secrets_key_id = Set(Some(sealed.key_id));
        active.update(db).await?;
        moved += 1;
    }
    Ok(moved)
}

fn aad(vps_id: i64) -> Vec<u8> {
    format!("nest/vps/{vps_id}/secrets").into_bytes()
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KEY_B: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    #[test]
    fn sealed_secrets_open_again_for_the_same_vps() {
        let secrets = VpsSecrets::generate();
        let sb = SecretBox::new(KEY_A, &[]).unwrap();
        let sealed = sb.seal(7, &secrets).unwrap();
        assert_eq!(sb.open(7, &sealed).unwrap(), secrets);
        let text = String::from_utf8_lossy(&sealed.ciphertext);
        assert!(!text.contains(&secrets.instance_secret));
    }

    #[test]
    fn a_ciphertext_moved_to_another_vps_does_not_open() {
        let sb = SecretBox::new(KEY_A, &[]).unwrap();
        let sealed = sb.seal(7, &VpsSecrets::generate()).unwrap();
        assert_eq!(sb.open(8, &sealed), Err(SecretsError::Decrypt));
    }

    #[test]
    fn an_altered_ciphertext_does_not_open() {
        let sb = SecretBox::new(KEY_A, &[]).unwrap();
        let mut sealed = sb.seal(7, &VpsSecrets::generate()).unwrap();
        sealed.ciphertext[0] ^= 1;
        assert_eq!(sb.open(7, &sealed), Err(SecretsError::Decrypt));
    }

    #[test]
    fn after_rotation_old_rows_still_open_and_new_rows_use_the_new_key() {
        let secrets = VpsSecrets::generate();
        let old = SecretBox::new(KEY_A, &[]).unwrap();
        let sealed = old.seal(1, &secrets).unwrap();
        let rotated = SecretBox::new(KEY_B, &[KEY_A.to_owned()]).unwrap();
        assert_eq!(rotated.open(1, &sealed).unwrap(), secrets);
        assert_ne!(rotated.seal(1, &secrets).unwrap().key_id, sealed.key_id);
        let without_old = SecretBox::new(KEY_B, &[]).unwrap();
        assert!(matches!(
            without_old.open(1, &sealed),
            Err(SecretsError::UnknownKey(_))
        ));
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        assert!(matches!(
            SecretBox::new("abc", &[]),
            Err(SecretsError::BadKey(_))
        ));
        assert!(matches!(
            SecretBox::new(&"zz".repeat(32), &[]),
            Err(SecretsError::BadKey(_))
        ));
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secrets = VpsSecrets::generate();
        assert!(!format!("{secrets:?}").contains(&secrets.mta_api_key));
    }

    #[test]
    fn a_key_file_is_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("nest-key-{}", random_hex(6)));
        let path = dir.join("secrets.key");
        let (a, generated) = SecretBox::from_key_file(&path, &[]).unwrap();
        assert!(generated);
        let (b, generated) = SecretBox::from_key_file(&path, &[]).unwrap();
        assert!(!generated);
        assert_eq!(a.current_key_id(), b.current_key_id());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
