//! Masking, the words of messages, and the e-mail check, on any input.
use super::*;

#[test]
fn case_numbers_are_masked_but_recognisable() {
    assert_eq!(masked_case_number("演示[2026]第00001号"), "演示****001号");
    assert_eq!(masked_case_number("A12"), "*12");
    assert_eq!(masked_case_number(""), "");
}

#[test]
fn messages_carry_the_masked_number_and_the_deadline_and_no_more() {
    let params = serde_json::json!({"case": "演示****001号", "deadline": "2026-12-02"});
    let text = message_text("case.served", &params, "https://p.example/");
    assert!(text.contains("演示****001号") && text.contains("2026-12-02"));
    assert!(text.ends_with("https://p.example/"));
    let released = message_text(
        "material.released",
        &serde_json::json!({"case": "x", "count": 3}),
        "u",
    );
    assert!(released.contains("3份") && released.contains("3 evidence"));
}

proptest::proptest! {
    /// Any case number, in any script: masking never panics, never shows more than six of
    /// its characters, and keeps its length recognisable only by the mask.
    #[test]
    fn masking_a_case_number_shows_at_most_six_characters(number in "\\PC{0,60}") {
        let masked = masked_case_number(&number);
        let shown = masked.chars().filter(|c| *c != '*').count();
        let own_stars = number.chars().filter(|c| *c == '*').count();
        proptest::prop_assert!(shown <= 6 + own_stars.min(6), "{masked}");
    }

    /// Any address: masking never panics and never shows a mobile number's middle digits
    /// or an e-mail address's local part beyond its first character.
    #[test]
    fn masking_an_address_hides_its_middle(local in "[a-z0-9.]{2,20}", digits in "1[3-9][0-9]{9}", junk in "\\PC{0,30}") {
        let mobile = masked_address("sms", &digits);
        proptest::prop_assert_eq!(mobile.len(), 11);
        proptest::prop_assert_eq!(&mobile[3..7], "****");
        let email = masked_address("email", &format!("{local}@example.com"));
        proptest::prop_assert!(email.starts_with(&local[..1]) && email.ends_with("***@example.com"), "{email}");
        let _ = masked_address("sms", &junk);
        let _ = masked_address("email", &junk);
    }

    /// Whatever is typed as an e-mail address, the check answers without panicking, and
    /// what it accepts has one `@`, no spaces and at most 254 bytes.
    #[test]
    fn the_e_mail_check_takes_any_input(raw in "\\PC{0,300}") {
        if let Some(kept) = parse_email(&raw) {
            proptest::prop_assert_eq!(kept.matches('@').count(), 1);
            proptest::prop_assert!(!kept.chars().any(char::is_whitespace) && kept.len() <= 254);
        }
    }
}
