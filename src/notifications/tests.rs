//! Masking, the words of messages (every SMS within one segment, in one language), and the
//! e-mail check, on any input.
use super::*;
use crate::i18n::Locale;

#[test]
fn display_names_are_refused_and_bare_addresses_kept() {
    assert_eq!(parse_email("x<evil@evil.example>"), None);
    assert_eq!(parse_email("李明 <li@example.com>"), None);
    assert_eq!(parse_email("\"a@b\"@example.com"), None);
    assert_eq!(parse_email("li@example.com,evil@evil.example"), None);
    assert_eq!(
        parse_email(" li.ming+claims@example.com "),
        Some("li.ming+claims@example.com".to_owned())
    );
    assert_eq!(
        parse_email("李明@例子.中国"),
        Some("李明@例子.中国".to_owned())
    );
}

#[test]
fn case_numbers_are_masked_but_recognisable() {
    assert_eq!(masked_case_number("演示[2026]第00001号"), "演示****001号");
    assert_eq!(masked_case_number("A12"), "*12");
    assert_eq!(masked_case_number(""), "");
}

#[test]
fn messages_carry_the_masked_number_and_the_deadline_and_no_more() {
    let params = serde_json::json!({"case": "演示****001号", "deadline": "2026-12-02"});
    let text = sms_text(Locale::Zh, "case.served", &params, "https://p.example/");
    assert!(
        text.contains("演示****001号") && text.contains("2026-12-02"),
        "{text}"
    );
    let released = serde_json::json!({"case": "x", "count": 3});
    let zh = sms_text(
        Locale::Zh,
        "material.released",
        &released,
        "https://p.example/",
    );
    assert!(zh.contains("3份") && !zh.contains("evidence"), "{zh}");
    assert!(
        zh.ends_with(" p.example"),
        "the address where it fits: {zh}"
    );
    let en = sms_text(
        Locale::En,
        "material.released",
        &released,
        "https://p.example/",
    );
    assert!(
        en.contains("3 evidence item(s)") && !en.contains("份"),
        "{en}"
    );
    let mail = email_text(
        Locale::En,
        "material.released",
        &released,
        "https://p.example/",
    );
    assert!(mail.contains("3 evidence item") && mail.ends_with("https://p.example/"));
    assert!(!mail.contains("份"), "one language: {mail}");
}

/// The longest a case number shows in a message (two characters, the mask, four more).
const CASE: &str = "京公****517号";
/// A realistic installation's address, as long as a county brigade's subdomain gets.
const PORTAL: &str = "https://evidence.gaj.example.gov.cn/";

/// Every event, with the longest parameters it takes in practice: a three-figure release, a
/// receipt number of a review (`FH…`) and of an access application (`CX…`), two-digit days.
fn every_event() -> Vec<Event> {
    let day = time::macros::date!(2026 - 12 - 12);
    let mut all = vec![
        Event::MaterialReleased { count: 120 },
        Event::DisclosureOpened,
        Event::DeterminationServed {
            deadline: Some(day),
        },
        Event::DeterminationServed { deadline: None },
        Event::CaseClosed,
        Event::ReviewClosingTomorrow { deadline: day },
        Event::DelegationRegistered { until: day },
        Event::DelegationEnding { until: day },
        Event::DelegationRevoked,
        Event::CodeExpiring {
            until: time::macros::datetime!(2026-12-12 10:30 UTC),
        },
        Event::AccountReset,
        Event::SecondFactorReset,
        Event::SecondFactorLocked,
        Event::AccessApproved {
            receipt: "CX20261207-04718263".into(),
            until: day,
        },
        Event::AccessRefused {
            receipt: "CX20261207-04718263".into(),
        },
        Event::AccessRevoked {
            receipt: "CX20261207-04718263".into(),
        },
        Event::AccessShortened {
            receipt: "CX20261207-04718263".into(),
            until: day,
        },
        Event::AccessLookupCode {
            receipt: "CX20261207-04718263".into(),
        },
    ];
    // The longest role's words, with a long company name and every kind granted.
    for role in [crate::vocab::Role::Owner, crate::vocab::Role::Insurer] {
        all.push(Event::AccessGrantedToOther {
            role,
            organisation: (role == crate::vocab::Role::Insurer)
                .then(|| "中国人民财产保险股份有限公司北京市朝阳支公司".into()),
            person: "欧阳**".into(),
            kinds: crate::vocab::MaterialKind::EVIDENCE.to_vec(),
            until: day,
        });
    }
    all.extend(
        crate::vocab::ReviewState::ALL
            .iter()
            .map(|state| Event::Review {
                state: *state,
                receipt: "FH20261207-04718263".into(),
            }),
    );
    // A new kind of event does not compile here until it is in the list above.
    for e in &all {
        match e {
            Event::MaterialReleased { .. }
            | Event::DisclosureOpened
            | Event::DeterminationServed { .. }
            | Event::CaseClosed
            | Event::ReviewClosingTomorrow { .. }
            | Event::DelegationRegistered { .. }
            | Event::DelegationEnding { .. }
            | Event::DelegationRevoked
            | Event::CodeExpiring { .. }
            | Event::AccountReset
            | Event::SecondFactorReset
            | Event::SecondFactorLocked
            | Event::Review { .. }
            | Event::AccessApproved { .. }
            | Event::AccessRefused { .. }
            | Event::AccessRevoked { .. }
            | Event::AccessShortened { .. }
            | Event::AccessLookupCode { .. }
            | Event::AccessGrantedToOther { .. } => {}
        }
    }
    all
}

/// The parameters as `notify` stores them: the event's, and the masked case number of the
/// events about a case — with the code the dispatcher adds to an SMS that carries one.
fn stored(event: &Event) -> serde_json::Value {
    let mut params = event.params();
    let about_a_case = !matches!(
        event,
        Event::CodeExpiring { .. }
            | Event::AccountReset
            | Event::SecondFactorReset
            | Event::SecondFactorLocked
            | Event::AccessLookupCode { .. }
    );
    if about_a_case {
        params.insert("case".into(), CASE.into());
    }
    if Event::carries_code(event.word()) {
        params.insert("code".into(), "123456".into());
    }
    serde_json::Value::Object(params)
}

/// The code an SMS carries is six digits, its notification's own, and no other's.
#[test]
fn a_code_is_six_digits_of_its_notification_alone() {
    let key = crate::keys::ServerKey::for_tests(3);
    let a = uuid::Uuid::from_u128(1);
    let b = uuid::Uuid::from_u128(2);
    let code = code_of(&key, a);
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "{code}"
    );
    assert_eq!(code, code_of(&key, a));
    assert_ne!(code, code_of(&key, b));
    assert_ne!(
        code_of(&key, b),
        code_of(&crate::keys::ServerKey::for_tests(4), b)
    );
    let params = stored(&Event::AccessLookupCode {
        receipt: "CX20261207-04718263".into(),
    });
    let text = sms_text(Locale::Zh, "access.lookup_code", &params, PORTAL);
    assert!(
        text.contains("123456") && text.contains("CX20261207-04718263"),
        "{text}"
    );
    assert!(!Event::carries_code("access.approved"));
}

/// One segment is 70 characters of Chinese: an SMS that needs two costs twice. The signature
/// and the case number are Chinese in every language, so an English SMS is UCS-2 (70) too.
#[test]
fn every_sms_fits_one_segment_in_either_language() {
    for event in every_event() {
        for locale in Locale::ALL {
            let text = sms_text(locale, event.word(), &stored(&event), PORTAL);
            assert_eq!(
                sms_segments(&text),
                1,
                "{} in {}: {} characters: {text}",
                event.word(),
                locale.code(),
                text.encode_utf16().count()
            );
            assert!(text.starts_with(SIGNATURE), "{text}");
        }
    }
}

fn has_cjk(s: &str) -> bool {
    s.chars()
        .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3000}'..='\u{303f}').contains(&c))
}

/// An SMS is in the recipient's language alone: the English one has no Chinese but the
/// registered signature and the case number; the Chinese one no English sentence.
#[test]
fn an_sms_speaks_one_language() {
    for event in every_event() {
        let params = stored(&event);
        let en = sms_text(Locale::En, event.word(), &params, PORTAL);
        let rest = en.replacen(SIGNATURE, "", 1).replace(CASE, "");
        assert!(!has_cjk(&rest), "{en}");
        let zh = sms_text(Locale::Zh, event.word(), &params, PORTAL);
        assert!(
            has_cjk(&zh.replacen(SIGNATURE, "", 1).replace(CASE, "")),
            "{zh}"
        );
        for english in [" the ", "Case ", " approved", " refused", "Your "] {
            assert!(!zh.contains(english), "{zh}");
        }
    }
}

/// Every event says what happened, in the inbox and by SMS, in both languages: none falls
/// back on "there is news".
#[test]
fn every_event_has_its_own_words() {
    for locale in Locale::ALL {
        let news = serde_json::json!({"case": CASE});
        let other_inbox = inbox_text(locale, "unknown.event", &news);
        let other_sms = sms_text(locale, "unknown.event", &news, PORTAL);
        for event in every_event() {
            let params = stored(&event);
            let inbox = inbox_text(locale, event.word(), &params);
            assert_ne!(inbox, other_inbox, "{}", event.word());
            assert!(
                !inbox.contains("%{") && !inbox.starts_with("inbox."),
                "{inbox}"
            );
            let sms = sms_text(locale, event.word(), &params, PORTAL);
            assert_ne!(sms, other_sms, "{}", event.word());
            assert!(!sms.contains("%{") && !sms.contains("sms."), "{sms}");
        }
    }
    let approved = Event::AccessApproved {
        receipt: "CX20261207-04718263".into(),
        until: time::macros::date!(2026 - 12 - 12),
    };
    let text = inbox_text(Locale::Zh, approved.word(), &stored(&approved));
    assert!(
        text.contains("您的查询申请CX20261207-04718263") && text.contains("已批准"),
        "{text}"
    );
    assert!(text.contains("领取查询凭证"), "{text}");
}

/// The portal's address follows where it fits in the one segment, never on an application's
/// outcome (its applicant reads it through their own link, not the portal's front page).
#[test]
fn the_address_follows_only_where_it_fits_and_leads_on() {
    let closed = stored(&Event::CaseClosed);
    let text = sms_text(Locale::Zh, "case.closed", &closed, "https://jt.example.cn/");
    assert!(text.ends_with(" jt.example.cn"), "{text}");
    let long = format!("https://{}.example.cn/", "x".repeat(60));
    let text = sms_text(Locale::Zh, "case.closed", &closed, &long);
    assert!(!text.contains("example"), "{text}");
    assert_eq!(sms_segments(&text), 1);
    let refused = Event::AccessRefused {
        receipt: "CX20261207-04718263".into(),
    };
    let text = sms_text(
        Locale::Zh,
        refused.word(),
        &stored(&refused),
        "https://a.cn/",
    );
    assert!(!text.contains("a.cn"), "{text}");
}

#[test]
fn segments_are_counted_as_providers_bill_them() {
    assert_eq!(sms_segments(""), 1);
    assert_eq!(sms_segments(&"a".repeat(160)), 1);
    assert_eq!(sms_segments(&"a".repeat(161)), 2);
    assert_eq!(sms_segments(&"a".repeat(306)), 2);
    assert_eq!(sms_segments(&"a".repeat(307)), 3);
    // `€` and `[` take two places of the 7-bit alphabet.
    assert_eq!(sms_segments(&"€".repeat(80)), 1);
    assert_eq!(sms_segments(&format!("{}[", "€".repeat(80))), 2);
    // One Chinese character makes it all UCS-2.
    assert_eq!(sms_segments(&"字".repeat(70)), 1);
    assert_eq!(sms_segments(&format!("{}a", "字".repeat(70))), 2);
    assert_eq!(sms_segments(&format!("【】{}", "a".repeat(68))), 1);
    assert_eq!(sms_segments(&"字".repeat(134)), 2);
    assert_eq!(sms_segments(&"字".repeat(135)), 3);
}

#[test]
fn what_is_promised_names_only_channels_there_are() {
    let both = Channels {
        sms: true,
        email: true,
    };
    assert_eq!(Told::to_applicant(both, true, false).key("p"), "p.sms");
    assert_eq!(Told::to_applicant(both, true, true).key("p"), "p.sms_email");
    assert_eq!(Told::to_applicant(both, false, true).key("p"), "p.none");
    let email = Channels {
        sms: false,
        email: true,
    };
    assert_eq!(Told::to_applicant(email, true, true).key("p"), "p.email");
    assert_eq!(Told::to_applicant(email, true, false).key("p"), "p.none");
    assert_eq!(
        Told::to_applicant(Channels::INBOX_ONLY, true, true).key("p"),
        "p.none"
    );
    for key in [
        "apply.told",
        "apply.pending",
        "flash.access_approved",
        "flash.access_refused",
    ] {
        for name in ["sms_email", "sms", "email", "none"] {
            for locale in Locale::ALL {
                let k = format!("{key}.{name}");
                assert_ne!(locale.t(&k), k, "{k} in {}", locale.code());
            }
        }
    }
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
    /// what it accepts has one `@`, no spaces, none of the characters around an address
    /// (display names, quotes, comments, lists) and at most 254 bytes.
    #[test]
    fn the_e_mail_check_takes_any_input(raw in "\\PC{0,300}") {
        if let Some(kept) = parse_email(&raw) {
            proptest::prop_assert_eq!(kept.matches('@').count(), 1);
            proptest::prop_assert!(!kept.chars().any(char::is_whitespace) && kept.len() <= 254);
            proptest::prop_assert!(!kept.contains(NOT_IN_A_BARE_ADDRESS), "{kept}");
        }
    }

    /// A bare address is kept as typed (trimmed); the same address with a display name, in
    /// quotes or angle brackets, or listed with another, is refused.
    #[test]
    fn only_bare_addresses_are_kept(
        local in "[a-z0-9][a-z0-9._+-]{0,20}",
        domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}",
        name in "\\PC{0,20}",
    ) {
        let bare = format!("{local}@{domain}");
        proptest::prop_assert_eq!(parse_email(&format!("  {bare} ")), Some(bare.clone()));
        for dressed in [
            format!("{name}<{bare}>"),
            format!("<{bare}>"),
            format!("\"{name}\" <{bare}>"),
            format!("{bare}, {bare}"),
            format!("{bare};x@{domain}"),
            format!("{bare} ({name})"),
        ] {
            proptest::prop_assert_eq!(parse_email(&dressed), None, "{}", dressed);
        }
    }
}

/// The parties read who was granted access — the company in full, the person masked — which
/// kinds and until when; their SMS says only that an owner or insurer was, and until when.
#[test]
fn the_parties_read_who_was_granted_what_until_when() {
    let granted = Event::AccessGrantedToOther {
        role: crate::vocab::Role::Insurer,
        organisation: Some("中国人民财产保险".into()),
        person: "李**".into(),
        kinds: vec![
            crate::vocab::MaterialKind::SceneDiagram,
            crate::vocab::MaterialKind::ScenePhoto,
        ],
        until: time::macros::date!(2026 - 12 - 12),
    };
    let params = stored(&granted);
    let inbox = inbox_text(Locale::Zh, granted.word(), &params);
    assert!(
        inbox.contains("保险公司 中国人民财产保险 李**")
            && inbox.contains("现场图、现场照片")
            && inbox.contains("2026-12-12"),
        "{inbox}"
    );
    let en = inbox_text(Locale::En, granted.word(), &params);
    assert!(
        en.contains("Scene diagram, ") && en.contains("中国人民财产保险"),
        "{en}"
    );
    let sms = sms_text(Locale::Zh, granted.word(), &params, PORTAL);
    assert!(
        sms.contains("保险公司") && sms.contains("2026-12-12"),
        "{sms}"
    );
    assert!(
        !sms.contains("中国人民财产保险") && !sms.contains("李**"),
        "{sms}"
    );
    let owner = Event::AccessGrantedToOther {
        role: crate::vocab::Role::Owner,
        organisation: None,
        person: "王**".into(),
        kinds: vec![crate::vocab::MaterialKind::Video],
        until: time::macros::date!(2026 - 12 - 12),
    };
    let inbox = inbox_text(Locale::Zh, owner.word(), &stored(&owner));
    assert!(inbox.contains("车辆所有人 王**"), "{inbox}");
}
