//! Plan signatures: an Ed25519 signature over the exact bytes of `plan.json`, kept beside it in
//! `plan.json.sig`, so the plan's own bytes stay what the manifest alone decides.
//!
//! `stir plan --sign` signs with the secret key in `STIR_PLAN_KEY`; `stir-runtime` verifies
//! with the public keys in `STIR_PLAN_PUBLIC_KEY`. **Why Ed25519 and not an HMAC:** with an HMAC
//! every runtime host would hold a key that can also sign plans, so anyone who can read a
//! runtime's environment file (an operator, a backup, a debug dump on either host of an HA
//! pair) could sign a plan that every runtime accepts. With a signature the secret key lives
//! only where plans are made (a CI secret), and runtimes hold public keys, which are not
//! secrets. Verification (`verify_strict`) compares no secret, so there is no timing to leak.
//!
//! Text forms (docs/plan-format.md, "Signature"):
//! - secret key: `stir-sk-ed25519-` and 64 lowercase hex digits (the 32-byte seed);
//! - public key: `stir-pk-ed25519-` and 64 hex digits;
//! - `plan.json.sig`: one line, `<public key> <128 hex digits of the signature>`.
//!
//! Invariant: no function here puts a secret key's text into an error or a `Debug` output.

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

pub const SECRET_PREFIX: &str = "stir-sk-ed25519-";
pub const PUBLIC_PREFIX: &str = "stir-pk-ed25519-";
/// The largest signature file read (one line of ~210 bytes).
pub const MAX_SIGNATURE_BYTES: u64 = 4096;
/// Where plans are signed: the secret key.
pub const SECRET_VAR: &str = "STIR_PLAN_KEY";
/// Where plans are run: the trusted public keys.
pub const PUBLIC_VAR: &str = "STIR_PLAN_PUBLIC_KEY";

/// `plan.json` -> `plan.json.sig`, in the same folder.
pub fn signature_path(plan: &Path) -> PathBuf {
    let mut name = plan.as_os_str().to_os_string();
    name.push(".sig");
    PathBuf::from(name)
}

/// A key in an environment variable that cannot be used. Never holds the key's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("`{var}` is not set")]
    Missing { var: &'static str },
    #[error("`{var}` is set but empty")]
    Empty { var: &'static str },
    #[error("`{var}` is not a {kind}: {why}")]
    Malformed {
        var: &'static str,
        kind: &'static str,
        why: String,
    },
}

impl KeyError {
    /// The fix, for a `help:` line.
    pub fn help(&self) -> String {
        let (KeyError::Missing { var } | KeyError::Empty { var } | KeyError::Malformed { var, .. }) =
            self;
        help_for(var)
    }
}

fn help_for(var: &str) -> String {
    if var == SECRET_VAR {
        format!(
            "make a key pair with `stir keygen -o plan-signing.key`, and give `{SECRET_VAR}` the \
             file's content where plans are signed (a CI secret); runtimes get the public key in \
             `{PUBLIC_VAR}`"
        )
    } else {
        format!(
            "give `{var}` the public key `stir keygen` printed (`{PUBLIC_PREFIX}` and 64 hex \
             digits; several, comma-separated, during a key rotation), or unset it to run \
             unsigned plans"
        )
    }
}

/// The signing key. `Debug` never shows it.
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(***, public {})", self.public())
    }
}

/// A trusted (or signing) public key; shown as its text form.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `prefix` + 64 hex digits -> 32 bytes; the reason never quotes the text.
fn key_bytes(text: &str, prefix: &str, other: &str) -> Result<[u8; 32], String> {
    let Some(hex_part) = text.strip_prefix(prefix) else {
        if text.starts_with(other) {
            return Err(format!("it holds a `{other}…` key"));
        }
        return Err(format!(
            "it does not start with `{prefix}` ({} characters)",
            text.chars().count()
        ));
    };
    if hex_part.len() != 64 {
        return Err(format!(
            "`{prefix}` must be followed by 64 hex digits, not {} characters",
            hex_part.chars().count()
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out)
        .map_err(|_| format!("what follows `{prefix}` is not hex"))?;
    Ok(out)
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<SecretKey, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no randomness from the system: {e}"))?;
        let key = SecretKey(SigningKey::from_bytes(&seed));
        seed.fill(0);
        Ok(key)
    }

    /// Read `STIR_PLAN_KEY`'s value (`None`: not set).
    pub fn from_var(value: Option<&str>) -> Result<SecretKey, KeyError> {
        let var = SECRET_VAR;
        let text = value.ok_or(KeyError::Missing { var })?.trim();
        if text.is_empty() {
            return Err(KeyError::Empty { var });
        }
        let seed =
            key_bytes(text, SECRET_PREFIX, PUBLIC_PREFIX).map_err(|why| KeyError::Malformed {
                var,
                kind: "stir signing key",
                why,
            })?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// The text form, for the key file `stir keygen` writes (and nothing else).
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", hex::encode(self.0.to_bytes()))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The content of `plan.json.sig` for these plan bytes.
    pub fn sign(&self, plan: &[u8]) -> String {
        let sig = self.0.sign(plan);
        format!("{} {}\n", self.public(), hex::encode(sig.to_bytes()))
    }
}

impl PublicKey {
    pub fn parse(text: &str, var: &'static str) -> Result<PublicKey, KeyError> {
        let malformed = |why: String| KeyError::Malformed {
            var,
            kind: "stir public key",
            why,
        };
        let bytes = key_bytes(text.trim(), PUBLIC_PREFIX, SECRET_PREFIX).map_err(malformed)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| malformed("the 32 bytes are not an Ed25519 public key".into()))
    }

    /// `STIR_PLAN_PUBLIC_KEY`'s value: one or more keys separated by commas or whitespace.
    /// `None` (not set) is no key; set but empty is an error, so a blank template line never
    /// turns verification off.
    pub fn list_from_var(value: Option<&str>) -> Result<Vec<PublicKey>, KeyError> {
        let var = PUBLIC_VAR;
        let Some(text) = value else {
            return Ok(Vec::new());
        };
        let keys = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|k| !k.is_empty())
            .map(|k| PublicKey::parse(k, var))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Empty { var });
        }
        Ok(keys)
    }
}

/// Why a runtime that verifies plans refuses one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum VerifyError {
    #[error("the plan is not signed (no `{sig}`), and this runtime runs only signed plans (STIR_PLAN_PUBLIC_KEY or STIR_PLAN_KEY is set)")]
    #[diagnostic(help(
        "sign it where it is made: `stir plan --sign -o plan.json` (with `STIR_PLAN_KEY` set) \
         writes plan.json.sig beside plan.json; deploy both files"
    ))]
    Unsigned { sig: String },
    #[error("`{sig}` is not a stir plan signature: {why}")]
    #[diagnostic(help("write it again with `stir plan --sign -o plan.json`; never edit it"))]
    Malformed { sig: String, why: String },
    #[error("the plan is signed by {signer}, a key this runtime does not trust")]
    #[diagnostic(help(
        "sign it with a trusted key, or add that public key to `STIR_PLAN_PUBLIC_KEY` (trusted now: {trusted})"
    ))]
    Untrusted { signer: String, trusted: String },
    #[error("the plan's bytes changed after it was signed: the signature by {signer} does not match them")]
    #[diagnostic(help(
        "never edit a signed plan: run `stir plan --sign -o plan.json` again from the reviewed \
         manifest (a plan written again without --sign keeps the old, now wrong, signature)"
    ))]
    Mismatch { signer: String },
}

/// Check `plan`'s bytes against the signature file's text (`None`: no such file) and the
/// trusted keys; answers the key that signed.
pub fn verify(
    plan: &[u8],
    sig_path: &Path,
    sig_text: Option<&[u8]>,
    trusted: &[PublicKey],
) -> Result<PublicKey, VerifyError> {
    let sig = sig_path.display().to_string();
    let Some(bytes) = sig_text else {
        return Err(VerifyError::Unsigned { sig });
    };
    let malformed = |why: &str| VerifyError::Malformed {
        sig: sig.clone(),
        why: why.to_string(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("it is not text"))?;
    let mut words = text.split_whitespace();
    let (Some(key), Some(sig_hex), None) = (words.next(), words.next(), words.next()) else {
        return Err(malformed("it is not one line `<public key> <signature>`"));
    };
    let signer = PublicKey::parse(key, PUBLIC_VAR)
        .map_err(|_| malformed(&format!("it does not start with a `{PUBLIC_PREFIX}` key")))?;
    let mut raw = [0u8; 64];
    hex::decode_to_slice(sig_hex, &mut raw)
        .map_err(|_| malformed("the signature is not 128 hex digits"))?;
    if !trusted.contains(&signer) {
        return Err(VerifyError::Untrusted {
            signer: signer.to_string(),
            trusted: trusted
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    signer
        .0
        .verify_strict(plan, &ed25519_dalek::Signature::from_bytes(&raw))
        .map_err(|_| VerifyError::Mismatch {
            signer: signer.to_string(),
        })?;
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig_path() -> PathBuf {
        signature_path(Path::new("p/plan.json"))
    }

    #[test]
    fn keys_round_trip_and_signatures_verify_only_for_their_bytes_and_key() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        assert_ne!(a.public(), b.public());
        let text = a.to_text();
        let again = SecretKey::from_var(Some(&format!("  {text}\n"))).unwrap();
        assert_eq!(again.public(), a.public());
        assert!(!format!("{a:?}").contains(&text[SECRET_PREFIX.len()..]));
        let public = PublicKey::parse(&a.public().to_string(), PUBLIC_VAR).unwrap();
        assert_eq!(public, a.public());

        let plan = b"{\"plan\": 1}\n";
        let sig = a.sign(plan);
        assert_eq!(sig.lines().count(), 1);
        let p = sig_path();
        assert_eq!(
            verify(plan, &p, Some(sig.as_bytes()), &[b.public(), a.public()]),
            Ok(a.public())
        );
        assert!(matches!(
            verify(b"{\"plan\": 2}\n", &p, Some(sig.as_bytes()), &[a.public()]),
            Err(VerifyError::Mismatch { .. })
        ));
        assert!(matches!(
            verify(plan, &p, Some(sig.as_bytes()), &[b.public()]),
            Err(VerifyError::Untrusted { .. })
        ));
        assert!(matches!(
            verify(plan, &p, None, &[a.public()]),
            Err(VerifyError::Unsigned { .. })
        ));
        // A signature of b claimed to be a's.
        let forged = format!(
            "{} {}",
            a.public(),
            b.sign(plan).split_whitespace().nth(1).unwrap()
        );
        assert!(matches!(
            verify(plan, &p, Some(forged.as_bytes()), &[a.public()]),
            Err(VerifyError::Mismatch { .. })
        ));
        for junk in [
            "",
            "x",
            "\u{0}\u{ff}",
            &format!("{} zz", a.public()),
            &format!("{sig} extra"),
        ] {
            assert!(
                matches!(
                    verify(plan, &p, Some(junk.as_bytes()), &[a.public()]),
                    Err(VerifyError::Malformed { .. })
                ),
                "{junk:?}"
            );
        }
    }

    /// Errors say what is wrong with a key, never what it is.
    #[test]
    fn bad_keys_are_named_never_shown() {
        let a = SecretKey::generate().unwrap();
        let text = a.to_text();
        let hex_part = &text[SECRET_PREFIX.len()..];
        assert!(matches!(
            SecretKey::from_var(None),
            Err(KeyError::Missing { .. })
        ));
        assert!(matches!(
            SecretKey::from_var(Some(" \n")),
            Err(KeyError::Empty { .. })
        ));
        for bad in [
            text[..40].to_string(),
            format!("{text}00"),
            hex_part.to_string(),
            text.replace(&hex_part[..2], "zz"),
            a.public().to_string(),
        ] {
            let e = SecretKey::from_var(Some(&bad)).unwrap_err();
            let shown = format!("{e} {}", e.help());
            assert!(matches!(e, KeyError::Malformed { .. }), "{shown}");
            assert!(!shown.contains(&hex_part[4..20]), "{shown}");
        }
        let e = PublicKey::list_from_var(Some(&text)).unwrap_err();
        assert!(
            e.to_string().contains("holds a `stir-sk-ed25519-…` key"),
            "{e}"
        );
        assert!(!e.to_string().contains(&hex_part[4..20]), "{e}");
        assert!(matches!(
            PublicKey::list_from_var(Some(" , ")),
            Err(KeyError::Empty { .. })
        ));
        assert_eq!(PublicKey::list_from_var(None), Ok(vec![]));
        let b = SecretKey::generate().unwrap();
        let two = format!("{}, {}\n", a.public(), b.public());
        assert_eq!(
            PublicKey::list_from_var(Some(&two)),
            Ok(vec![a.public(), b.public()])
        );
    }

    /// The fix names the command for a signing key and the key's form for a trusted key, and
    /// `Debug` shows a key as a user would look it up (the public half only).
    #[test]
    fn helps_and_debug_output_say_what_to_do_and_show_only_public_keys() {
        let help = KeyError::Missing { var: SECRET_VAR }.help();
        assert!(help.contains("stir keygen -o plan-signing.key"), "{help}");
        assert!(help.contains(PUBLIC_VAR), "{help}");
        for e in [
            KeyError::Empty { var: PUBLIC_VAR },
            KeyError::Malformed {
                var: PUBLIC_VAR,
                kind: "stir public key",
                why: String::new(),
            },
        ] {
            let help = e.help();
            assert!(
                help.contains(&format!("`{PUBLIC_PREFIX}` and 64 hex")),
                "{help}"
            );
            assert!(help.contains("unset it to run unsigned plans"), "{help}");
        }
        let a = SecretKey::generate().unwrap();
        let public = a.public().to_string();
        assert_eq!(format!("{:?}", a.public()), public);
        assert_eq!(format!("{a:?}"), format!("SecretKey(***, public {public})"));
    }

    #[test]
    fn signature_files_sit_beside_the_plan() {
        assert_eq!(
            signature_path(Path::new("/etc/stir/plan.json")),
            Path::new("/etc/stir/plan.json.sig")
        );
        assert_eq!(signature_path(Path::new("p")), Path::new("p.sig"));
    }
}
