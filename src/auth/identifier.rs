//! Login identifiers: how each kind is normalised, validated, looked up (by keyed hash) and
//! displayed (masked).
//!
//! | who | identifier | example | shown as |
//! | --- | --- | --- | --- |
//! | party | 18-character citizen ID (GB 11643 check digit); a 15-digit legacy number is converted | `11010519491231002X` | `1101**********002X` |
//! | party (foreign) | passport number, 5–20 letters and digits | `E12345678` | `E1*****78` |
//! | agent | lawyer licence number (17 digits) or mobile number (11 digits, 1[3-9]…) | `13800138000` | `138****8000` |
//! | staff, admin | username, 3–32 of `a-z 0-9 . _ -`, starting with a letter | `wang.li` | `wang.li` |
//!
//! Input is forgiving of what people type: full-width digits and letters become ASCII, spaces
//! (including the ideographic space) and hyphens inside numbers are dropped, `x` becomes `X`.

use crate::keys::ServerKey;

use crate::vocab::Role;

/// A validated identifier of one kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identifier {
    CitizenId(String),
    Passport(String),
    Mobile(String),
    LawyerLicence(String),
    Username(String),
}

/// Why an identifier was refused; shown next to the field.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("身份证号码应为18位 (a citizen ID number has 18 characters)")]
    CitizenIdLength,
    #[error("身份证号码中的出生日期无效 (the birth date in the ID number is invalid)")]
    CitizenIdDate,
    #[error("身份证号码校验位不正确，请核对 (the check digit does not match)")]
    CitizenIdCheckDigit,
    #[error("护照号码应为5–20位字母或数字 (a passport number has 5–20 letters or digits)")]
    Passport,
    #[error("手机号码应为11位，以1开头 (a mobile number has 11 digits starting with 1)")]
    Mobile,
    #[error("律师执业证号应为17位数字 (a lawyer licence number has 17 digits)")]
    LawyerLicence,
    #[error(
        "用户名须为3–32个字符，以字母开头，只能包含小写字母、数字和 . _ - (3–32 of a-z 0-9 . _ -, starting with a letter)"
    )]
    Username,
    #[error("请输入登录账号 (enter your sign-in identifier)")]
    Empty,
}

/// Full-width → ASCII, spaces and hyphens removed. Letters keep their case here.
pub fn clean(raw: &str) -> String {
    raw.chars()
        .filter_map(|c| match c {
            '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
                char::from_u32(c as u32 - 0xFEE0)
            }
            c if c.is_whitespace() || c == '-' || c == '\u{2010}' || c == '\u{FF0D}' => None,
            c => Some(c),
        })
        .collect()
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

fn check_digit(first17: &str) -> char {
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] as char
}

fn valid_date(yyyymmdd: &str) -> bool {
    let (Ok(y), Ok(m), Ok(d)) = (
        yyyymmdd[0..4].parse::<i32>(),
        yyyymmdd[4..6].parse::<u8>(),
        yyyymmdd[6..8].parse::<u8>(),
    ) else {
        return false;
    };
    let Ok(month) = time::Month::try_from(m) else {
        return false;
    };
    (1900..=2100).contains(&y) && time::Date::from_calendar_date(y, month, d).is_ok()
}

/// A citizen ID number (GB 11643), validated; a 15-digit legacy number is converted to 18.
pub fn parse_citizen_id(raw: &str) -> Result<String, IdError> {
    let s = clean(raw).to_ascii_uppercase();
    let s = match s.len() {
        15 if s.bytes().all(|b| b.is_ascii_digit()) => {
            // Legacy numbers (before 1999) lack the century and the check digit.
            let first17 = format!("{}19{}", &s[..6], &s[6..]);
            let check = check_digit(&first17);
            format!("{first17}{check}")
        }
        // Bytes are counted: only ASCII may be split at 17 (a 16-digit number and a two-byte
        // letter is 18 bytes, and splitting it panicked).
        18 if s.is_ascii() => s,
        _ => return Err(IdError::CitizenIdLength),
    };
    let (first17, last) = s.split_at(17);
    if !first17.bytes().all(|b| b.is_ascii_digit())
        || !last.bytes().all(|b| b.is_ascii_digit() || b == b'X')
    {
        return Err(IdError::CitizenIdLength);
    }
    if !valid_date(&first17[6..14]) {
        return Err(IdError::CitizenIdDate);
    }
    if !last.starts_with(check_digit(first17)) {
        return Err(IdError::CitizenIdCheckDigit);
    }
    Ok(s)
}

pub fn parse_passport(raw: &str) -> Result<String, IdError> {
    let s = clean(raw).to_ascii_uppercase();
    if (5..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(s)
    } else {
        Err(IdError::Passport)
    }
}

pub fn parse_mobile(raw: &str) -> Result<String, IdError> {
    let s = clean(raw);
    let s = s.strip_prefix("+86").unwrap_or(&s).to_owned();
    let b = s.as_bytes();
    if b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
    {
        Ok(s)
    } else {
        Err(IdError::Mobile)
    }
}

pub fn parse_lawyer_licence(raw: &str) -> Result<String, IdError> {
    let s = clean(raw);
    if s.len() == 17 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s)
    } else {
        Err(IdError::LawyerLicence)
    }
}

/// A staff or admin username: 3–32 of `a-z 0-9 . _ -`, case-insensitive.
pub fn normalise_username(raw: &str) -> Result<String, IdError> {
    let name = raw.trim().to_ascii_lowercase();
    let ok_len = (3..=32).contains(&name.len());
    let starts_with_letter = name.starts_with(|c: char| c.is_ascii_lowercase());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok_len && starts_with_letter && ok_chars {
        Ok(name)
    } else {
        Err(IdError::Username)
    }
}

impl Identifier {
    /// The identifier a new account of `role` is known by: staff and administrators by a
    /// username; a party by a citizen ID number (or, with `passport`, a passport number); an
    /// agent by a mobile number or else a lawyer's licence number; a vehicle owner or an
    /// insurer's staff member by the mobile number their application gave.
    pub fn for_role(role: Role, raw: &str, passport: bool) -> Result<Identifier, IdError> {
        Ok(match role {
            Role::Staff | Role::Admin => Identifier::Username(normalise_username(raw)?),
            Role::Party if passport => Identifier::Passport(parse_passport(raw)?),
            Role::Party => Identifier::CitizenId(parse_citizen_id(raw)?),
            Role::Agent => match parse_mobile(raw) {
                Ok(m) => Identifier::Mobile(m),
                Err(_) => Identifier::LawyerLicence(parse_lawyer_licence(raw)?),
            },
            Role::Owner | Role::Insurer => Identifier::Mobile(parse_mobile(raw)?),
        })
    }

    /// What is hashed into the look-up key: the kind and the normalised value.
    fn key_material(&self) -> String {
        match self {
            Identifier::CitizenId(s) => format!("cn-id:{s}"),
            Identifier::Passport(s) => format!("passport:{s}"),
            Identifier::Mobile(s) => format!("mobile:{s}"),
            Identifier::LawyerLicence(s) => format!("licence:{s}"),
            Identifier::Username(s) => format!("user:{s}"),
        }
    }

    /// The look-up key: hex HMAC under the server key, so the database never holds a clear ID
    /// number and cannot be searched without the key.
    pub fn login_key(&self, key: &ServerKey) -> String {
        hex::encode(key.mac(b"login-identifier", self.key_material().as_bytes()))
    }

    /// The form that may appear on pages, notices and in the audit log.
    pub fn masked(&self) -> String {
        fn keep(s: &str, head: usize, tail: usize) -> String {
            let n = s.chars().count();
            if n <= head + tail {
                return "*".repeat(n);
            }
            let chars: Vec<char> = s.chars().collect();
            let mut out: String = chars[..head].iter().collect();
            out.push_str(&"*".repeat(n - head - tail));
            out.extend(&chars[n - tail..]);
            out
        }
        match self {
            Identifier::CitizenId(s) => keep(s, 4, 4),
            Identifier::Passport(s) => keep(s, 2, 2),
            Identifier::Mobile(s) => keep(s, 3, 4),
            Identifier::LawyerLicence(s) => keep(s, 4, 4),
            Identifier::Username(s) => s.clone(),
        }
    }
}

/// Every account identifier a sign-in input could be. An input shaped like a citizen ID number
/// but invalid is an error (the person mistyped it), not "no such account".
pub fn sign_in_candidates(raw: &str) -> Result<Vec<Identifier>, IdError> {
    let s = clean(raw);
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    let id_shaped = (s.len() == 18
        && s.is_ascii()
        && s[..17].bytes().all(|b| b.is_ascii_digit())
        && s[17..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'X' || b == b'x'))
        || (s.len() == 15 && digits);
    if id_shaped {
        return parse_citizen_id(&s).map(|id| vec![Identifier::CitizenId(id)]);
    }
    let mut out = Vec::new();
    if let Ok(m) = parse_mobile(&s) {
        out.push(Identifier::Mobile(m));
    }
    if let Ok(l) = parse_lawyer_licence(&s) {
        out.push(Identifier::LawyerLicence(l));
    }
    if !digits && let Ok(p) = parse_passport(&s) {
        out.push(Identifier::Passport(p));
    }
    // Usernames may contain '-' which `clean` drops: read them from the raw input.
    if let Ok(u) = normalise_username(raw) {
        out.push(Identifier::Username(u));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Valid numbers built with the GB 11643 check digit.
    const ID: &str = "11010519491231002X";

    #[test]
    fn citizen_ids_are_checked_and_normalised() {
        assert_eq!(parse_citizen_id(ID).unwrap(), ID);
        assert_eq!(
            parse_citizen_id("11010519491231002x").unwrap(),
            ID,
            "lower-case x"
        );
        assert_eq!(
            parse_citizen_id(" 110105 1949 1231 002X ").unwrap(),
            ID,
            "spaces"
        );
        assert_eq!(
            parse_citizen_id("１１０１０５１９４９１２３１００２Ｘ").unwrap(),
            ID,
            "full-width digits and letter"
        );
        assert_eq!(
            parse_citizen_id("11010519491231002\u{3000}X").unwrap(),
            ID,
            "ideographic space"
        );
        assert_eq!(
            parse_citizen_id("110105194912310021"),
            Err(IdError::CitizenIdCheckDigit)
        );
        assert_eq!(
            parse_citizen_id("110105194913310028"),
            Err(IdError::CitizenIdDate)
        );
        assert_eq!(
            parse_citizen_id("1101051949123100"),
            Err(IdError::CitizenIdLength)
        );
        assert_eq!(
            parse_citizen_id("11010519491231002Y"),
            Err(IdError::CitizenIdLength)
        );
    }

    #[test]
    fn legacy_fifteen_digit_numbers_become_eighteen() {
        // 110105491231002 is the 1999-era form of 11010519491231002X.
        assert_eq!(parse_citizen_id("110105491231002").unwrap(), ID);
    }

    #[test]
    fn masks_hide_the_middle() {
        assert_eq!(
            Identifier::CitizenId(ID.into()).masked(),
            "1101**********002X"
        );
        assert_eq!(
            Identifier::Mobile("13800138000".into()).masked(),
            "138****8000"
        );
        assert_eq!(
            Identifier::Passport("E12345678".into()).masked(),
            "E1*****78"
        );
        assert_eq!(
            Identifier::LawyerLicence("11101201810123456".into()).masked(),
            "1110*********3456"
        );
    }

    #[test]
    fn sign_in_inputs_map_to_their_kinds() {
        assert_eq!(
            sign_in_candidates(ID).unwrap(),
            vec![Identifier::CitizenId(ID.into())]
        );
        assert_eq!(
            sign_in_candidates("138 0013 8000").unwrap(),
            vec![Identifier::Mobile("13800138000".into())]
        );
        assert_eq!(
            sign_in_candidates("11101201810123456").unwrap(),
            vec![Identifier::LawyerLicence("11101201810123456".into())]
        );
        assert_eq!(
            sign_in_candidates("e12345678").unwrap(),
            vec![
                Identifier::Passport("E12345678".into()),
                Identifier::Username("e12345678".into())
            ]
        );
        assert_eq!(
            sign_in_candidates("wang-li").unwrap(),
            vec![
                Identifier::Passport("WANGLI".into()),
                Identifier::Username("wang-li".into())
            ]
        );
        assert_eq!(
            sign_in_candidates("110105194912310021"),
            Err(IdError::CitizenIdCheckDigit)
        );
        assert_eq!(sign_in_candidates("  "), Err(IdError::Empty));
    }

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalise_username("  Admin.Li ").unwrap(), "admin.li");
        assert!(normalise_username("ab").is_err());
        assert!(normalise_username("li wei").is_err());
        assert!(normalise_username("管理员").is_err());
        assert!(
            normalise_username("007agent").is_err(),
            "starts with a letter"
        );
    }

    #[test]
    fn login_keys_depend_on_kind_and_server_key() {
        let a = Identifier::Username("admin".into()).login_key(&ServerKey::for_tests(1));
        let b = Identifier::Username("admin".into()).login_key(&ServerKey::for_tests(2));
        let c = Identifier::Passport("ADMIN".into()).login_key(&ServerKey::for_tests(1));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn multibyte_characters_never_split() {
        // 16 digits and a two-byte character: 18 bytes, but not 18 characters.
        for raw in [
            "1101051949123100é",
            "110105194912310é0",
            "11010519491231000\u{212A}",
        ] {
            assert!(parse_citizen_id(raw).is_err(), "{raw}");
            let _ = sign_in_candidates(raw);
        }
    }

    fn with_check_digit(first17: &str) -> String {
        format!("{first17}{}", check_digit(first17))
    }

    proptest::proptest! {
        /// Any input at all: an answer, never a panic (the sign-in and registration forms and
        /// the CLI pass these through untouched).
        #[test]
        fn any_input_is_answered(raw in "\\PC{0,40}|[0-9Xx ]{14,20}") {
            let _ = parse_citizen_id(&raw);
            let _ = parse_passport(&raw);
            let _ = parse_mobile(&raw);
            let _ = parse_lawyer_licence(&raw);
            let _ = normalise_username(&raw);
            let _ = sign_in_candidates(&raw);
        }

        /// Every number with a valid date and its check digit is accepted, in its canonical
        /// form; changing its last digit to any other value is refused.
        #[test]
        fn check_digits_decide(region in 110000u32..659999, y in 1900i32..2100, doy in 1u16..365, seq in 0u16..999) {
            let date = time::Date::from_ordinal_date(y, doy).unwrap();
            let first17 = format!(
                "{region:06}{:04}{:02}{:02}{seq:03}",
                date.year(),
                u8::from(date.month()),
                date.day()
            );
            let id = with_check_digit(&first17);
            proptest::prop_assert_eq!(parse_citizen_id(&id.to_lowercase()), Ok(id.clone()));
            for wrong in "0123456789X".chars().filter(|c| !id.ends_with(*c)) {
                let bad = format!("{first17}{wrong}");
                proptest::prop_assert!(parse_citizen_id(&bad).is_err(), "{}", bad);
            }
        }
    }
}
