//! The fields of an owner's or insurer's application as they are checked: plate numbers of the
//! mainland, unified social credit codes (GB 32100, with their check character), licence and
//! policy numbers — and every field that breaks its rule, collected so that the form marks them
//! all at once.

/// Every field of a form that breaks a rule, in the form's order, each with its bilingual
/// message (`中文 (English)`, for `i18n::pick`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: &str) {
        self.0.push((field, message.to_owned()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields and their messages, in the form's order.
    pub fn into_list(self) -> Vec<(&'static str, String)> {
        self.0
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let messages: Vec<&str> = self.0.iter().map(|(_, m)| m.as_str()).collect();
        f.write_str(&messages.join("; "))
    }
}

/// Letters, digits and hyphens, upper-cased, full-width folded: credit codes, policy numbers.
pub fn code_text(raw: &str) -> String {
    crate::auth::identifier::clean(raw).to_ascii_uppercase()
}

/// A plate number as compared: full-width folded, spaces, hyphens and dots removed, upper case.
pub fn plate_text(raw: &str) -> String {
    crate::auth::identifier::clean(raw)
        .chars()
        .filter(|c| !matches!(c, '·' | '.' | '•'))
        .collect::<String>()
        .to_uppercase()
}

/// A plate number of the mainland: a province's character, a letter, then 5 or 6 letters and
/// digits (new-energy plates have 6), or 4 or 5 before a final 挂/学/警/港/澳.
pub fn plausible_plate(plate: &str) -> bool {
    let chars: Vec<char> = plate.chars().collect();
    let Some((first, rest)) = chars.split_first() else {
        return false;
    };
    // A suffixed plate (trailer, learner, police, Hong Kong, Macao) has one character less.
    let (rest, lengths) = match rest.last() {
        Some('挂' | '学' | '警' | '港' | '澳') => (&rest[..rest.len() - 1], 5..=6),
        _ => (rest, 6..=7),
    };
    !first.is_ascii()
        && rest.first().is_some_and(char::is_ascii_uppercase)
        && lengths.contains(&rest.len())
        && rest
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A unified social credit code (统一社会信用代码, GB 32100: 18 characters) or a licence
/// number: 6–30 letters and digits.
pub fn plausible_code(code: &str) -> bool {
    (6..=30).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The characters of a unified social credit code, in the order of their values (GB 32100:
/// digits and upper-case letters without I, O, S, V and Z).
const CREDIT_CODE_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Whether an 18-character code is a unified social credit code whose check character (the
/// 18th, GB 32100 §4.4: weights 3ⁱ mod 31) is right. Codes of other lengths are licence
/// numbers and have none.
pub fn credit_code_checks(code: &str) -> bool {
    const WEIGHTS: [usize; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let values: Option<Vec<usize>> = code.chars().map(|c| CREDIT_CODE_CHARS.find(c)).collect();
    let Some(values) = values.filter(|v| v.len() == 18) else {
        return false;
    };
    let sum: usize = values[..17].iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    (31 - sum % 31) % 31 == values[17]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plates_of_the_mainland_pass_and_others_do_not() {
        for ok in [
            "京A12345",
            "粤B·D12345",
            "沪AD12345",
            "京A1234学",
            "苏E 12345",
        ] {
            assert!(plausible_plate(&plate_text(ok)), "{ok}");
        }
        for bad in [
            "",
            "A12345",
            "京12345",
            "京A123",
            "京A123456789",
            "京a<script>",
        ] {
            assert!(!plausible_plate(&plate_text(bad)), "{bad}");
        }
    }

    #[test]
    fn unified_social_credit_codes_check_their_last_character() {
        assert!(credit_code_checks("91110000710931141J"));
        assert!(credit_code_checks("91110000100017643K"));
        assert!(
            !credit_code_checks("91110000710931141K"),
            "a wrong check character"
        );
        assert!(!credit_code_checks("91110000710931141"), "17 characters");
        assert!(
            !credit_code_checks("9111000071093114IJ"),
            "I is not a code character"
        );
    }

    proptest! {
        /// Exactly one check character completes any 17 valid characters.
        #[test]
        fn one_check_character_fits(body in "[0-9A-HJ-NPQRTUWXY]{17}") {
            let fitting = CREDIT_CODE_CHARS
                .chars()
                .filter(|c| credit_code_checks(&format!("{body}{c}")))
                .count();
            prop_assert_eq!(fitting, 1);
        }
    }

    #[test]
    fn credit_codes_are_letters_and_digits() {
        assert!(plausible_code(&code_text("91110000100017643K")));
        assert!(plausible_code(&code_text("ＰＩＣＣ-2026-0001")));
        assert!(!plausible_code(&code_text("12345")));
        assert!(!plausible_code(&code_text("9111<0000>")));
    }

    proptest! {
        #[test]
        fn plate_checks_never_panic(raw in "\\PC{0,20}") {
            let _ = plausible_plate(&plate_text(&raw));
        }
    }
}
