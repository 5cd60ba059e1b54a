//! The words of messages, in the recipient's language alone, from the catalog: what the inbox
//! and an e-mail say (`inbox.event.*`, `email.*`), what an SMS says (`sms.*`, short enough for
//! one segment), how many segments an SMS takes, and how numbers and addresses are masked.

use crate::i18n::Locale;

/// A case number as messages show it: its first two and last four characters, the rest masked
/// (`演示****001号`), enough for a person to know which of their cases, and nothing for others.
pub fn masked_case_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 6 {
        return chars
            .iter()
            .enumerate()
            .map(|(i, c)| if i + 2 >= chars.len() { *c } else { '*' })
            .collect();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// An address as staff and administrators see it in lists: `138****8000`, `z***@example.com`.
pub fn masked_address(channel: &str, address: &str) -> String {
    match channel {
        "email" => match address.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        _ => format!(
            "{}****{}",
            address.get(..3).unwrap_or(""),
            address.get(7..).unwrap_or("")
        ),
    }
}

/// The sender's signature that opens every SMS (短信签名): registered with the provider, in
/// Chinese, as the rules for SMS senders in China require — in an English SMS too.
pub const SIGNATURE: &str = "【交通事故证据公开】";

/// The catalog name of a stored event's words (`inbox.event.<name>`, `sms.<name>`); `other`
/// for a word this version does not know (a row written by a newer one).
fn words_of(event: &str, has_deadline: bool) -> &'static str {
    match event {
        "material.released" => "material_released",
        "case.disclosing" => "case_disclosing",
        "case.served" if has_deadline => "case_served_deadline",
        "case.served" => "case_served",
        "case.closed" => "case_closed",
        "review.closing" => "review_closing",
        "delegation.registered" => "delegation_registered",
        "delegation.ending" => "delegation_ending",
        "delegation.revoked" => "delegation_revoked",
        "code.expiring" => "code_expiring",
        "account.reset" => "account_reset",
        "second_factor.reset" => "second_factor_reset",
        "second_factor.locked" => "second_factor_locked",
        "review.filed" => "review_filed",
        "review.forwarded" => "review_forwarded",
        "review.accepted" => "review_accepted",
        "review.refused" => "review_refused",
        "review.concluded" => "review_concluded",
        "access.approved" => "access_approved",
        "access.refused" => "access_refused",
        "access.revoked" => "access_revoked",
        "access.shortened" => "access_shortened",
        "access.lookup_code" => "access_lookup_code",
        "case.access_granted" => "access_granted_to_other",
        _ => "other",
    }
}

/// The catalog text `{prefix}.<event's name>` in `locale`, with the stored parameters (dates
/// in the language's format).
fn worded(locale: Locale, prefix: &str, event: &str, params: &serde_json::Value) -> String {
    let date = |name: &str| {
        params[name].as_str().map(|d| {
            time::Date::parse(d, &time::format_description::well_known::Iso8601::DATE)
                .map_or_else(|_| d.to_owned(), |d| locale.date(d))
        })
    };
    let deadline = date("deadline");
    let until = date("until");
    let count = params["count"].as_u64().unwrap_or(1).to_string();
    let key = format!("{prefix}.{}", words_of(event, deadline.is_some()));
    let role = params["role"]
        .as_str()
        .map(|r| locale.t(&format!("role.{r}")).into_owned())
        .unwrap_or_default();
    locale.tf(
        &key,
        &[
            ("case", params["case"].as_str().unwrap_or("")),
            ("n", &count),
            ("deadline", deadline.as_deref().unwrap_or("")),
            ("until", until.as_deref().unwrap_or("")),
            ("receipt", params["receipt"].as_str().unwrap_or("")),
            ("role", &role),
            ("who", &who(locale, &role, params)),
            ("kinds", &kinds(locale, params)),
            // Only as an SMS is sent: the dispatcher adds it (`code_of`); never stored.
            ("code", params["code"].as_str().unwrap_or("")),
        ],
    )
}

/// Who was granted access, as the parties read it: the role, the company in full (insurers),
/// the person's name as stored (masked).
fn who(locale: Locale, role: &str, params: &serde_json::Value) -> String {
    let person = params["person"].as_str().unwrap_or("");
    let who = match params["organisation"].as_str() {
        Some(org) => locale.tf(
            "inbox.who_of_company",
            &[("role", role), ("organisation", org), ("person", person)],
        ),
        None => locale.tf("inbox.who", &[("role", role), ("person", person)]),
    };
    who.trim().to_owned()
}

/// The kinds of material granted (stored `scene_diagram,scene_photo`), labelled in `locale`.
fn kinds(locale: Locale, params: &serde_json::Value) -> String {
    params["kinds"]
        .as_str()
        .unwrap_or("")
        .split(',')
        .filter(|k| !k.is_empty())
        .map(|k| locale.t(&format!("kind.{k}")).into_owned())
        .collect::<Vec<_>>()
        .join(locale.t("access.list_separator").as_ref())
}

/// What happened, as the inbox (and an e-mail) says it in `locale`.
pub fn inbox_text(locale: Locale, event: &str, params: &serde_json::Value) -> String {
    worded(locale, "inbox.event", event, params)
}

/// An e-mail's subject in `locale`: the signature and the masked case number, or the account
/// for a notice about it.
pub fn email_subject(locale: Locale, params: &serde_json::Value) -> String {
    let subject = match params["case"].as_str() {
        Some(case) => locale.tf("email.subject_case", &[("case", case)]),
        None => locale.t("email.subject_account").into_owned(),
    };
    format!("{SIGNATURE}{subject}")
}

/// An e-mail's text in `locale`: what happened, as the inbox says it, and the portal's address.
pub fn email_text(locale: Locale, event: &str, params: &serde_json::Value, portal: &str) -> String {
    format!(
        "{SIGNATURE}{}\n\n{}",
        inbox_text(locale, event, params),
        locale.tf("email.portal", &[("url", portal)])
    )
}

/// An SMS in `locale`: the signature and the catalog's short words (`sms.*`), then the portal's
/// address (without `https://`) where it leads on and still fits in one segment. An
/// application's outcome names no address: its applicant reads it through their own status
/// link, which no SMS carries.
pub fn sms_text(locale: Locale, event: &str, params: &serde_json::Value, portal: &str) -> String {
    let text = format!("{SIGNATURE}{}", worded(locale, "sms", event, params));
    if event.starts_with("access.") {
        return text;
    }
    let address = portal
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let with_address = format!("{text} {address}");
    if address.is_empty() || sms_segments(&with_address) > 1 {
        text
    } else {
        with_address
    }
}

/// The GSM 03.38 default alphabet: a text only of these (and of [`GSM_EXTENSION`], which take
/// two places) goes as 7-bit, 160 characters a segment; any other character makes it UCS-2,
/// 70 a segment.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// The segments an SMS of `text` is billed as: one up to 160 GSM 7-bit places or 70 UCS-2
/// units; past that, parts of 153 or 67 (each carries a header joining them).
pub fn sms_segments(text: &str) -> usize {
    let gsm: Option<usize> = text
        .chars()
        .map(|c| {
            if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (len, single, part) = match gsm {
        Some(places) => (places, 160, 153),
        None => (text.encode_utf16().count(), 70, 67),
    };
    if len <= single { 1 } else { len.div_ceil(part) }
}
