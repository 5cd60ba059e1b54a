//! RFC 3161 trusted timestamps of bundle manifests: with `PORTAL_TSA_URL` set, the SHA-256 of
//! each `manifest.json` is sent to that time-stamping authority and its response kept in the
//! bundle as `manifest.tsr` (what `openssl ts -verify -in manifest.tsr -data manifest.json
//! -CAfile <the authority's chain>` checks).
//!
//! The request is tiny and written by hand in DER here (`TimeStampReq`: version 1, the
//! message imprint, a random nonce, `certReq` true). Of the response only what the portal
//! itself vouches for is read: its status, and in the token's `TSTInfo` the message imprint
//! (it must be the manifest's SHA-256), the nonce (it must be ours) and `genTime`. The CMS
//! signature over the token is the authority's, checked with the authority's certificate by
//! whoever relies on it (`openssl ts -verify`), not by a second parser here.

/// What a time-stamping authority gave, as far as the portal reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeStamp {
    /// The SHA-256 the token certifies.
    pub imprint: [u8; 32],
    /// `genTime`: when the authority says it saw that hash.
    pub gen_time: time::OffsetDateTime,
    /// The token's serial number, in hex.
    pub serial: String,
    /// The nonce of the request it answers, if the authority echoed one.
    pub nonce: Option<Vec<u8>>,
}

/// Why there is no usable timestamp.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimestampError {
    #[error("the time-stamping authority could not be reached: {0}")]
    Unreachable(String),
    #[error("the time-stamping authority refused the request (status {0})")]
    Refused(i64),
    #[error("the time-stamping authority's answer is not an RFC 3161 response: {0}")]
    Malformed(&'static str),
    #[error("the timestamp certifies another document, not this manifest")]
    OtherDocument,
    #[error("the timestamp answers another request (its nonce differs)")]
    OtherRequest,
}

/// DER of the OID 2.16.840.1.101.3.4.2.1 (SHA-256).
const SHA256_OID: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// DER of the OID 1.2.840.113549.1.9.16.1.4 (id-ct-TSTInfo).
const TST_INFO_OID: [u8; 11] = [
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The DER `TimeStampReq` for `sha256` with `nonce` (see [`positive`]).
pub fn request_der(sha256: &[u8; 32], nonce: [u8; 8]) -> Vec<u8> {
    let algorithm = der(0x30, &[der(0x06, &SHA256_OID), vec![0x05, 0x00]].concat());
    let imprint = der(0x30, &[algorithm, der(0x04, sha256)].concat());
    let nonce_int = positive(nonce);
    let body = [
        der(0x02, &[0x01]),
        imprint,
        der(0x02, &nonce_int),
        der(0x01, &[0xff]),
    ]
    .concat();
    der(0x30, &body)
}

/// `nonce` as the content of a minimal DER INTEGER, positive: its top bit cleared and its first
/// byte never zero (a leading zero byte would not be DER, and OpenSSL refuses it).
fn positive(mut nonce: [u8; 8]) -> Vec<u8> {
    nonce[0] &= 0x7f;
    if nonce[0] == 0 {
        nonce[0] = 1;
    }
    nonce.to_vec()
}

/// One DER element: its tag, its content and what follows it.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), TimestampError> {
    let bad = TimestampError::Malformed("a DER length runs past the end");
    let (&tag, rest) = input.split_first().ok_or(bad.clone())?;
    let (&first, rest) = rest.split_first().ok_or(bad.clone())?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad);
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), TimestampError> {
    match tlv(input)? {
        (t, content, rest) if t == tag => Ok((content, rest)),
        _ => Err(TimestampError::Malformed(what)),
    }
}

/// The DER `TSTInfo` inside a `TimeStampResp`, after its status is checked.
fn tst_info(response: &[u8]) -> Result<&[u8], TimestampError> {
    let (resp, _) = expect(response, 0x30, "TimeStampResp")?;
    let (status_info, token) = expect(resp, 0x30, "PKIStatusInfo")?;
    let (status, _) = expect(status_info, 0x02, "PKIStatus")?;
    let status = status.iter().fold(0i64, |a, b| (a << 8) | i64::from(*b));
    if status > 1 {
        return Err(TimestampError::Refused(status));
    }
    let (content_info, _) = expect(token, 0x30, "timeStampToken")?;
    let (_, content_info) = expect(content_info, 0x06, "contentType")?;
    let (explicit, _) = expect(content_info, 0xa0, "content")?;
    let (signed_data, _) = expect(explicit, 0x30, "SignedData")?;
    let (_, signed_data) = expect(signed_data, 0x02, "SignedData version")?;
    let (_, signed_data) = expect(signed_data, 0x31, "digestAlgorithms")?;
    let (encap, _) = expect(signed_data, 0x30, "encapContentInfo")?;
    let (oid, encap) = expect(encap, 0x06, "eContentType")?;
    if oid != TST_INFO_OID {
        return Err(TimestampError::Malformed("the token holds no TSTInfo"));
    }
    let (explicit, _) = expect(encap, 0xa0, "eContent")?;
    let (octets, _) = expect(explicit, 0x04, "eContent")?;
    let (info, _) = expect(octets, 0x30, "TSTInfo")?;
    Ok(info)
}

/// Reads a `TimeStampResp` (DER): its status must be granted, its token's `TSTInfo` readable.
pub fn parse(response: &[u8]) -> Result<TimeStamp, TimestampError> {
    let info = tst_info(response)?;
    let (_, info) = expect(info, 0x02, "TSTInfo version")?;
    let (_, info) = expect(info, 0x06, "policy")?;
    let (imprint, info) = expect(info, 0x30, "messageImprint")?;
    let (algorithm, imprint) = expect(imprint, 0x30, "hashAlgorithm")?;
    let (oid, _) = expect(algorithm, 0x06, "hashAlgorithm")?;
    let (hash, _) = expect(imprint, 0x04, "hashedMessage")?;
    if oid != SHA256_OID {
        return Err(TimestampError::OtherDocument);
    }
    let imprint: [u8; 32] = hash.try_into().map_err(|_| TimestampError::OtherDocument)?;
    let (serial, info) = expect(info, 0x02, "serialNumber")?;
    let (gen_time, mut info) = expect(info, 0x18, "genTime")?;
    let gen_time = generalized_time(gen_time).ok_or(TimestampError::Malformed("genTime"))?;
    // accuracy (SEQUENCE) and ordering (BOOLEAN) may come before the nonce.
    let mut nonce = None;
    while !info.is_empty() {
        let (tag, content, rest) = tlv(info)?;
        if tag == 0x02 {
            let trimmed: Vec<u8> = content.iter().copied().skip_while(|b| *b == 0).collect();
            nonce = Some(trimmed);
            break;
        }
        info = rest;
    }
    Ok(TimeStamp {
        imprint,
        gen_time,
        serial: hex::encode(serial),
        nonce,
    })
}

/// [`parse`], and the token must certify `manifest` (its SHA-256).
pub fn check(response: &[u8], manifest: &[u8]) -> Result<TimeStamp, TimestampError> {
    use sha2::{Digest, Sha256};
    let stamp = parse(response)?;
    if stamp.imprint[..] != Sha256::digest(manifest)[..] {
        return Err(TimestampError::OtherDocument);
    }
    Ok(stamp)
}

/// `YYYYMMDDHHMMSS[.fff]Z` (DER GeneralizedTime is always UTC).
fn generalized_time(text: &[u8]) -> Option<time::OffsetDateTime> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let whole = text.split('.').next()?;
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole[r].parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        n(0..4)? as i32,
        time::Month::try_from(n(4..6)? as u8).ok()?,
        n(6..8)? as u8,
    )
    .ok()?;
    let at = time::Time::from_hms(n(8..10)? as u8, n(10..12)? as u8, n(12..14)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, at).assume_utc())
}

/// `genTime` as the page prints it: `2026-12-07 19:40:01 (UTC+8)`.
pub fn shown(at: time::OffsetDateTime) -> String {
    at.to_offset(time::macros::offset!(+8))
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] (UTC+8)"
        ))
        .unwrap_or_default()
}

/// Asks the authority at `url` for a timestamp of `manifest`, waiting at most `deadline`;
/// returns the DER `TimeStampResp`, checked to certify `manifest` and answer this request.
pub async fn request(
    url: &url::Url,
    manifest: &[u8],
    deadline: std::time::Duration,
) -> Result<Vec<u8>, TimestampError> {
    use sha2::{Digest, Sha256};
    let hash: [u8; 32] = Sha256::digest(manifest).into();
    let mut nonce = [0u8; 8];
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| TimestampError::Unreachable("no random bytes for the nonce".into()))?;
    let unreachable = |e: reqwest::Error| TimestampError::Unreachable(e.to_string());
    let client = reqwest::Client::builder()
        .timeout(deadline)
        .connect_timeout(deadline)
        .build()
        .map_err(unreachable)?;
    let answer = client
        .post(url.clone())
        .header("Content-Type", "application/timestamp-query")
        .header("Accept", "application/timestamp-reply")
        .body(request_der(&hash, nonce))
        .send()
        .await
        .map_err(unreachable)?;
    if !answer.status().is_success() {
        return Err(TimestampError::Unreachable(format!(
            "HTTP {}",
            answer.status()
        )));
    }
    let body = answer.bytes().await.map_err(unreachable)?.to_vec();
    let stamp = check(&body, manifest)?;
    let ours = positive(nonce);
    if stamp.nonce.as_deref() != Some(&ours[..]) {
        return Err(TimestampError::OtherRequest);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_the_der_rfc_3161_asks_for() {
        let req = request_der(&[0xab; 32], [0x80, 1, 2, 3, 4, 5, 6, 7]);
        // SEQUENCE { 1, { {sha256, NULL}, OCTET STRING[32] }, nonce (positive), TRUE }
        assert_eq!(&req[..5], &[0x30, 0x43, 0x02, 0x01, 0x01]);
        assert_eq!(req.len(), 0x45);
        assert_eq!(&req[req.len() - 3..], &[0x01, 0x01, 0xff]);
        let (content, rest) = expect(&req, 0x30, "req").unwrap();
        assert!(rest.is_empty());
        let (_, content) = expect(content, 0x02, "v").unwrap();
        let (_, content) = expect(content, 0x30, "imprint").unwrap();
        let (nonce, _) = expect(content, 0x02, "nonce").unwrap();
        assert_eq!(nonce, &[1, 1, 2, 3, 4, 5, 6, 7], "minimal and positive");
        assert_eq!(positive([0xff; 8])[0], 0x7f);
    }

    #[test]
    fn generalized_times_are_read_as_utc() {
        let t = generalized_time(b"20261207194001Z").unwrap();
        assert_eq!(shown(t), "2026-12-08 03:40:01 (UTC+8)");
        assert!(generalized_time(b"20261207194001.123Z").is_some());
        assert!(generalized_time(b"2026120719400Z").is_none());
        assert!(generalized_time(b"20261207194001").is_none());
    }

    proptest::proptest! {
        /// Whatever an authority (or a tampered bundle) sends is answered, never a panic.
        #[test]
        fn any_bytes_are_answered(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            proptest::prop_assert!(parse(&bytes).is_err() || bytes.len() > 60);
        }
    }
}
