//! Challenge and response: each side proves that it holds the secret, over fresh nonces from both
//! sides, without sending it.
//!
//! A follower's `register_channel` carries its nonce; the leader answers with a challenge (its own
//! nonce and its proof, no `success` yet); the follower checks it and sends a second
//! `register_channel` with its proof; the leader checks that and answers as usual.
//!
//! A proof is HMAC-SHA-256, keyed by the secret, over a domain label, the side that proves (so a
//! leader's proof is never a valid follower's), the channel, then the leader's and the follower's
//! nonces. A replayed proof fails: the other side's nonce is new each time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 16;

/// What every proof starts with, so it cannot be mistaken for another use of the secret.
const DOMAIN: &[u8] = b"cluster-client registration v1\0";

/// A fresh random value that one side contributes to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    /// A new random nonce.
    ///
    /// # Errors
    ///
    /// When the operating system gives no random bytes.
    pub fn fresh() -> Result<Nonce, getrandom::Error> {
        let mut bytes = [0u8; NONCE_LEN];
        getrandom::fill(&mut bytes)?;
        Ok(Nonce(bytes))
    }

    /// As sent on the wire: lowercase hex.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// From the wire; `None` unless exactly [`NONCE_LEN`] bytes of hex.
    pub fn from_hex(text: &str) -> Option<Nonce> {
        let mut bytes = [0u8; NONCE_LEN];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Nonce(bytes))
    }
}

/// Which side proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The process that holds the port.
    Leader,
    /// A process that registers with it.
    Follower,
}

/// The nonces of one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonces {
    /// The leader's.
    pub leader: Nonce,
    /// The follower's.
    pub follower: Nonce,
}

fn mac(secret: &[u8], side: Side, channel: &str, nonces: Nonces) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(DOMAIN);
    mac.update(match side {
        Side::Leader => b"leader\0",
        Side::Follower => b"follower",
    });
    mac.update(&(channel.len() as u64).to_be_bytes());
    mac.update(channel.as_bytes());
    mac.update(&nonces.leader.0);
    mac.update(&nonces.follower.0);
    mac
}

/// The proof `side` sends, as lowercase hex.
pub fn prove(secret: &[u8], side: Side, channel: &str, nonces: Nonces) -> String {
    hex::encode(mac(secret, side, channel, nonces).finalize().into_bytes())
}

/// Whether `proof` (hex, from the wire) is `side`'s proof; compared in constant time.
pub fn check(secret: &[u8], side: Side, channel: &str, nonces: Nonces, proof: &str) -> bool {
    let mut bytes = [0u8; 32];
    if hex::decode_to_slice(proof, &mut bytes).is_err() {
        return false;
    }
    mac(secret, side, channel, nonces)
        .verify_slice(&bytes)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces() -> Nonces {
        Nonces {
            leader: Nonce::fresh().expect("random"),
            follower: Nonce::fresh().expect("random"),
        }
    }

    #[test]
    fn a_proof_checks_only_for_its_secret_side_channel_and_nonces() {
        let secret = [7u8; 32];
        let n = nonces();
        let proof = prove(&secret, Side::Follower, "registry", n);
        assert!(check(&secret, Side::Follower, "registry", n, &proof));
        assert!(!check(&[8u8; 32], Side::Follower, "registry", n, &proof));
        assert!(
            !check(&secret, Side::Leader, "registry", n, &proof),
            "reflected"
        );
        assert!(!check(&secret, Side::Follower, "other", n, &proof));
        assert!(
            !check(&secret, Side::Follower, "registry", nonces(), &proof),
            "replayed"
        );
        assert!(!check(&secret, Side::Follower, "registry", n, "zz"));
        assert!(!check(&secret, Side::Follower, "registry", n, &proof[..62]));
    }

    #[test]
    fn nonces_cross_the_wire_as_hex() {
        let nonce = Nonce::fresh().expect("random");
        let text = nonce.to_hex();
        assert_eq!(text.len(), 2 * NONCE_LEN);
        assert_eq!(Nonce::from_hex(&text), Some(nonce));
        assert_eq!(Nonce::from_hex(&text[2..]), None);
        assert_eq!(Nonce::from_hex("not hex at all, but 32 chars!!!!"), None);
        assert_ne!(nonce, Nonce::fresh().expect("random"));
    }
}
