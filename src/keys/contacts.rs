//! Telephone numbers and e-mail addresses at rest (issue 36): sealed with SM4-GCM (GB/T 32907
//! in GCM mode) or AES-256-GCM under a key of their own, each value saying which cipher made it;
//! looked up only by keyed hash.

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::ServerKey;

/// The cipher that seals telephone numbers and e-mail addresses at rest (`PORTAL_FIELD_CIPHER`):
/// SM4-GCM (GB/T 32907 in GCM mode, the default) or AES-256-GCM where the installation chooses
/// international algorithms. What it sealed says which it was, so the other opens it too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldCipher {
    #[default]
    Sm4Gcm,
    Aes256Gcm,
}

impl FieldCipher {
    pub const ALL: [FieldCipher; 2] = [FieldCipher::Sm4Gcm, FieldCipher::Aes256Gcm];

    /// The setting's value: `sm4-gcm` or `aes-256-gcm`.
    pub fn parse(name: &str) -> Option<FieldCipher> {
        Self::ALL.into_iter().find(|c| c.name() == name.trim())
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldCipher::Sm4Gcm => "sm4-gcm",
            FieldCipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// What opens a stored value sealed by this cipher (with the key's version).
    fn prefix(self) -> &'static str {
        match self {
            FieldCipher::Sm4Gcm => "sm4gcm:v1:",
            FieldCipher::Aes256Gcm => "aes256gcm:v1:",
        }
    }
}

/// A contact field: what a sealed value is bound to (it opens as nothing else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact {
    Mobile,
    Email,
}

impl Contact {
    fn word(self) -> &'static str {
        match self {
            Contact::Mobile => "mobile",
            Contact::Email => "email",
        }
    }
}

/// Telephone numbers and e-mail addresses at rest: sealed, never stored in clear, and looked up
/// only by keyed hash (as identity numbers are).
impl ServerKey {
    /// `plain` (a normalised mobile number or e-mail address) sealed for `field` with this
    /// installation's cipher: its prefix (`sm4gcm:v1:` or `aes256gcm:v1:`), then base64 of the
    /// nonce, the ciphertext and the tag. Bound to the kind of field, so a sealed number never
    /// opens as an address.
    pub fn seal_contact(&self, field: Contact, plain: &str) -> String {
        use base64::Engine;
        let cipher = self.1.cipher;
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let aad = format!("{}{}", cipher.prefix(), field.word());
        let body = gcm(
            cipher,
            &self.field_key(cipher),
            Gcm::Seal,
            &nonce,
            aad.as_bytes(),
            plain.as_bytes(),
        );
        // GCM refuses only messages of gigabytes; a contact field is under 300 bytes.
        #[allow(clippy::expect_used)]
        let body = body.expect("GCM seals a short field");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        format!(
            "{}{}",
            cipher.prefix(),
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// What [`ServerKey::seal_contact`] sealed for `field`, under whichever cipher sealed it
    /// (the prefix says); none for a value in clear, sealed for another field, or altered.
    pub fn open_contact(&self, field: Contact, stored: &str) -> Option<String> {
        use base64::Engine;
        let cipher = FieldCipher::ALL
            .into_iter()
            .find(|c| stored.starts_with(c.prefix()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&stored[cipher.prefix().len()..])
            .ok()?;
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, body) = bytes.split_at(12);
        let aad = format!("{}{}", cipher.prefix(), field.word());
        let plain = gcm(
            cipher,
            &self.field_key(cipher),
            Gcm::Open,
            nonce.try_into().ok()?,
            aad.as_bytes(),
            body,
        )?;
        String::from_utf8(plain).ok()
    }

    /// Whether `stored` is a sealed contact field (of either cipher), not one in clear.
    pub fn is_sealed_contact(stored: &str) -> bool {
        FieldCipher::ALL
            .into_iter()
            .any(|c| stored.starts_with(c.prefix()))
    }

    /// The look-up key of a normalised contact: hex HMAC under the server key, so that rows are
    /// found by number without opening any of them.
    pub fn contact_hash(&self, field: Contact, normalised: &str) -> String {
        hex::encode(self.mac(
            b"contact-hash",
            format!("{}:{normalised}", field.word()).as_bytes(),
        ))
    }

    /// The key of `cipher`: the field key's HMAC of the cipher's name (SM4 takes its first 16
    /// bytes), so the two ciphers never share key material.
    fn field_key(&self, cipher: FieldCipher) -> [u8; 32] {
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.1.root)
            .expect("HMAC accepts any key length");
        mac.update(cipher.name().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[derive(Clone, Copy)]
enum Gcm {
    Seal,
    Open,
}

/// One GCM operation with `cipher`: SM4 (16-byte key) or AES-256 in RustCrypto's generic GCM,
/// 12-byte nonce, 16-byte tag appended.
fn gcm(
    cipher: FieldCipher,
    key: &[u8; 32],
    op: Gcm,
    nonce: &[u8; 12],
    aad: &[u8],
    msg: &[u8],
) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, Payload};
    let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::from(*nonce);
    let payload = Payload { msg, aad };
    fn run<C: Aead>(c: &C, op: Gcm, n: &aes_gcm::aead::Nonce<C>, p: Payload) -> Option<Vec<u8>> {
        match op {
            Gcm::Seal => c.encrypt(n, p).ok(),
            Gcm::Open => c.decrypt(n, p).ok(),
        }
    }
    match cipher {
        FieldCipher::Sm4Gcm => {
            let c = <aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12> as aes_gcm::KeyInit>::new_from_slice(&key[..16]).ok()?;
            run(&c, op, &nonce, payload)
        }
        FieldCipher::Aes256Gcm => {
            let c = <aes_gcm::Aes256Gcm as aes_gcm::KeyInit>::new_from_slice(key).ok()?;
            run(&c, op, &nonce, payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sm4_matches_the_standards_example() {
        // GB/T 32907-2016, example 1: key = plaintext.
        use sm4::cipher::{BlockCipherEncrypt, KeyInit as _};
        let key = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let c = sm4::Sm4::new_from_slice(&key).unwrap();
        let mut block = sm4::cipher::Block::<sm4::Sm4>::try_from(&key[..]).unwrap();
        c.encrypt_block(&mut block);
        assert_eq!(hex::encode(block), "681edf34d206965e86b3e94f536e4246");
    }

    #[test]
    fn sm4_gcm_matches_rfc_8998() {
        // RFC 8998, appendix A.1 (SM4-GCM).
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap());
        let nonce: [u8; 12] = hex::decode("00001234567800000000ABCD")
            .unwrap()
            .try_into()
            .unwrap();
        let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").unwrap();
        let plain = hex::decode(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD\
             EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        )
        .unwrap();
        let sealed = gcm(FieldCipher::Sm4Gcm, &key, Gcm::Seal, &nonce, &aad, &plain).unwrap();
        assert_eq!(
            hex::encode_upper(&sealed),
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735\
             D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D\
             83DE3541E4C2B58177E065A9BF7B62EC"
        );
        let opened = gcm(FieldCipher::Sm4Gcm, &key, Gcm::Open, &nonce, &aad, &sealed).unwrap();
        assert_eq!(opened, plain);
    }

    #[test]
    fn contacts_open_under_either_setting_and_only_as_what_they_are() {
        let sm4 = ServerKey::for_tests(9);
        let aes = ServerKey::for_tests(9).with_field_cipher(FieldCipher::Aes256Gcm);
        let a = aes.seal_contact(Contact::Mobile, "13800138000");
        let s = sm4.seal_contact(Contact::Mobile, "13800138000");
        assert!(
            a.starts_with("aes256gcm:v1:") && s.starts_with("sm4gcm:v1:"),
            "{a} {s}"
        );
        assert!(!a.contains("13800138000") && !s.contains("13800138000"));
        assert_ne!(
            s,
            sm4.seal_contact(Contact::Mobile, "13800138000"),
            "fresh nonce"
        );
        for key in [&sm4, &aes] {
            assert_eq!(
                key.open_contact(Contact::Mobile, &a).as_deref(),
                Some("13800138000")
            );
            assert_eq!(
                key.open_contact(Contact::Mobile, &s).as_deref(),
                Some("13800138000")
            );
            assert_eq!(
                key.open_contact(Contact::Email, &s),
                None,
                "bound to its field"
            );
        }
        assert_eq!(
            ServerKey::for_tests(8).open_contact(Contact::Mobile, &s),
            None
        );
        let given = ServerKey::for_tests(9).with_field_key([5; 32]);
        assert_eq!(
            given.open_contact(Contact::Mobile, &s),
            None,
            "another field key"
        );
        let mut altered = s.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            sm4.open_contact(Contact::Mobile, &String::from_utf8(altered).unwrap()),
            None
        );
        assert_eq!(
            sm4.open_contact(Contact::Mobile, "13800138000"),
            None,
            "clear"
        );
        assert!(ServerKey::is_sealed_contact(&s) && !ServerKey::is_sealed_contact("a@b.cn"));
        assert_eq!(
            FieldCipher::parse("aes-256-gcm"),
            Some(FieldCipher::Aes256Gcm)
        );
        assert_eq!(FieldCipher::parse("sm4-gcm"), Some(FieldCipher::Sm4Gcm));
        assert_eq!(FieldCipher::parse("des"), None);
        assert_eq!(
            sm4.contact_hash(Contact::Mobile, "13800138000"),
            aes.contact_hash(Contact::Mobile, "13800138000")
        );
        assert_ne!(
            sm4.contact_hash(Contact::Mobile, "13800138000"),
            sm4.contact_hash(Contact::Email, "13800138000")
        );
    }
}
