//! Languages: Simplified Chinese (the default) and English. Every user-visible string is a key of
//! the message catalog `src/locales/*.toml` (rust-i18n, compiled in); the language of a request
//! comes from the `portal-lang` cookie (set by the switch on every page), else `Accept-Language`.
//! Times are shown in China Standard Time in the language's format.

use std::borrow::Cow;

use time::OffsetDateTime;

/// The cookie the language switch sets.
pub const COOKIE: &str = "portal-lang";

tokio::task_local! {
    static CURRENT: Locale;
}

/// Middleware: the answer to a request, error pages included, is in the language the request
/// asks for ([`Locale::negotiate`]).
pub async fn answer_in_the_request_language(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let locale = Locale::negotiate(
        req.cookie(COOKIE).as_ref().map(|c| c.value()),
        req.headers()
            .get(actix_web::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    locale.scope(next.call(req)).await
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Locale {
    #[default]
    Zh,
    En,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::Zh, Locale::En];

    /// The catalog's and HTML's name of the language.
    pub fn code(self) -> &'static str {
        match self {
            Locale::Zh => "zh-CN",
            Locale::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Locale> {
        match code.trim().to_ascii_lowercase().as_str() {
            "zh-cn" | "zh" | "zh-hans" | "zh-hans-cn" => Some(Locale::Zh),
            "en" | "en-us" | "en-gb" => Some(Locale::En),
            _ => None,
        }
    }

    /// The language of a request: the cookie if valid, else the first supported language of
    /// `Accept-Language` by preference, else Chinese.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Locale {
        if let Some(l) = cookie.and_then(Locale::from_code) {
            return l;
        }
        let mut offers: Vec<(f32, Locale)> = accept_language
            .unwrap_or("")
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim().to_ascii_lowercase();
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q=").map(str::to_owned))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                let primary = tag.split('-').next().unwrap_or("");
                let locale = match primary {
                    "zh" => Locale::Zh,
                    "en" => Locale::En,
                    _ => return None,
                };
                (q > 0.0).then_some((q, locale))
            })
            .collect();
        // Stable: equal weights keep the client's order.
        offers.sort_by(|a, b| b.0.total_cmp(&a.0));
        offers.first().map_or(Locale::Zh, |(_, l)| *l)
    }

    /// The language of the request being handled (Chinese outside a request).
    pub fn current() -> Locale {
        CURRENT.try_with(|l| *l).unwrap_or_default()
    }

    /// Runs `fut` with this language current.
    pub fn scope<F: std::future::Future>(
        self,
        fut: F,
    ) -> impl std::future::Future<Output = F::Output> {
        CURRENT.scope(self, fut)
    }

    /// The text of `key` in this language. A missing key shows itself (and a test fails).
    pub fn t(self, key: &str) -> Cow<'static, str> {
        match crate::_rust_i18n_try_translate(self.code(), key) {
            Some(text) => Cow::Owned(text.into_owned()),
            None => Cow::Owned(key.to_owned()),
        }
    }

    /// The label of one of the domain's words (a role, a case status, a material kind, …):
    /// catalog key `<catalog>.<value>`, e.g. `status.served`. The one way any of them is named.
    pub fn label<W: crate::vocab::Word>(self, word: W) -> String {
        self.t(&format!("{}.{}", W::CATALOG, word.as_str()))
            .into_owned()
    }

    /// A party's label in the case (甲, 乙, 丙 …): in English the letter of its place (A, B, C …),
    /// as English documents name parties; any other label as it is.
    pub fn party_label(self, label: &str) -> String {
        const STEMS: [char; 10] = ['甲', '乙', '丙', '丁', '戊', '己', '庚', '辛', '壬', '癸'];
        match (self, label.chars().collect::<Vec<_>>().as_slice()) {
            (Locale::En, [c]) => STEMS
                .iter()
                .position(|s| s == c)
                .and_then(|i| char::from_u32('A' as u32 + i as u32))
                .map_or_else(|| label.to_owned(), String::from),
            _ => label.to_owned(),
        }
    }

    /// The text of `key` with each `%{name}` replaced by its value.
    pub fn tf(self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.t(key).into_owned();
        for (name, value) in args {
            text = text.replace(&format!("%{{{name}}}"), value);
        }
        text
    }

    /// A time in China Standard Time: `2026-11-25 10:33` / `25 Nov 2026, 10:33`.
    pub fn time(self, t: OffsetDateTime) -> String {
        let t = t.to_offset(time::macros::offset!(+8));
        match self {
            Locale::Zh => format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            ),
            Locale::En => format!(
                "{} {} {}, {:02}:{:02}",
                t.day(),
                &t.month().to_string()[..3],
                t.year(),
                t.hour(),
                t.minute()
            ),
        }
    }

    /// A date: `2026-11-25` / `25 Nov 2026`.
    pub fn date(self, d: time::Date) -> String {
        match self {
            Locale::Zh => d.to_string(),
            Locale::En => format!("{} {} {}", d.day(), &d.month().to_string()[..3], d.year()),
        }
    }
}

/// The part of a bilingual message `中文 (English)` — as the domain's validation errors are
/// written — for the current request's language.
pub fn pick(bilingual: &str) -> String {
    pick_in(Locale::current(), bilingual)
}

/// Where the English half of `中文 (English)` begins (its " ("): the parenthesis that the final
/// ")" closes, so that parentheses inside the English ("(Art. 63)") stay in it.
fn english_part(bilingual: &str) -> Option<usize> {
    if !bilingual.ends_with(')') {
        return None;
    }
    let mut depth = 0usize;
    for (at, c) in bilingual.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return bilingual[..at].strip_suffix(' ').map(|zh| zh.len());
                }
            }
            _ => {}
        }
    }
    None
}

/// [`pick`] for `locale`.
pub fn pick_in(locale: Locale, bilingual: &str) -> String {
    let (zh, en) = match english_part(bilingual) {
        Some(at) => (&bilingual[..at], &bilingual[at + 2..bilingual.len() - 1]),
        None => (bilingual, bilingual),
    };
    match locale {
        Locale::Zh => zh.to_owned(),
        Locale::En => {
            let mut en = en.to_owned();
            if let Some(first) = en.get(..1) {
                en.replace_range(..1, &first.to_uppercase());
            }
            en
        }
    }
}

/// The text of `key` in the current request's language.
/// A word's label in the current request's language ([`Locale::label`]).
pub fn label<W: crate::vocab::Word>(word: W) -> String {
    Locale::current().label(word)
}

pub fn t(key: &str) -> String {
    Locale::current().t(key).into_owned()
}

/// Every key of the catalog in `locale`.
pub fn keys(locale: Locale) -> Vec<String> {
    crate::_rust_i18n_backend()
        .messages_for_locale(locale.code())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, _)| k.into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_label<W: crate::vocab::Word>(expected_zh: &[(W, &str)]) {
        for locale in Locale::ALL {
            for w in W::ALL {
                let key = format!("{}.{}", W::CATALOG, w.as_str());
                assert_ne!(
                    locale.label(*w),
                    key,
                    "{key} has no {} label",
                    locale.code()
                );
            }
        }
        for (w, zh) in expected_zh {
            assert_eq!(Locale::Zh.label(*w), *zh);
        }
    }

    #[test]
    fn the_english_half_keeps_its_own_parentheses() {
        let m = "只有死亡事故才能公开（第六十三条） (only fatal cases may disclose (Art. 63))";
        assert_eq!(
            pick_in(Locale::En, m),
            "Only fatal cases may disclose (Art. 63)"
        );
        assert_eq!(pick_in(Locale::Zh, m), "只有死亡事故才能公开（第六十三条）");
        let m = "文件内容（PDF）与文件名不符 (the file's content (PDF) does not match its name)";
        assert_eq!(
            pick_in(Locale::En, m),
            "The file's content (PDF) does not match its name"
        );
        assert_eq!(pick_in(Locale::En, "只有中文"), "只有中文");
        assert_eq!(pick_in(Locale::Zh, "x)"), "x)");
    }

    #[test]
    fn a_party_label_is_a_letter_in_english() {
        assert_eq!(Locale::En.party_label("甲"), "A");
        assert_eq!(Locale::En.party_label("丙"), "C");
        assert_eq!(Locale::En.party_label("癸"), "J");
        assert_eq!(Locale::Zh.party_label("甲"), "甲");
        assert_eq!(Locale::En.party_label("甲1"), "甲1");
        assert_eq!(Locale::En.party_label(""), "");
    }

    #[test]
    fn every_word_has_a_label_in_both_languages() {
        use crate::vocab::*;
        every_label(&[(Role::Staff, "民警")]);
        every_label(&[(CaseStatus::Disclosing, "证据公开中（仅可查看）")]);
        every_label(&[(ServiceKind::Certificate, "事故证明")]);
        every_label(&[(PartyRole::CloseRelative, "死者近亲属")]);
        every_label(&[
            (MaterialKind::ExpertOpinion, "鉴定意见"),
            (MaterialKind::Authorisation, "授权委托书"),
        ]);
        every_label(&[(MaterialState::Draft, "草稿（未公开）")]);
        every_label(&[(WithholdGround::StateSecret, "国家秘密")]);
    }

    #[test]
    fn the_language_follows_the_cookie_then_accept_language() {
        assert_eq!(Locale::negotiate(None, None), Locale::Zh);
        assert_eq!(Locale::negotiate(Some("en"), Some("zh-CN")), Locale::En);
        assert_eq!(
            Locale::negotiate(Some("fr"), Some("en-GB,en;q=0.9")),
            Locale::En
        );
        assert_eq!(
            Locale::negotiate(None, Some("fr-FR, en;q=0.5, zh-CN;q=0.8")),
            Locale::Zh
        );
        assert_eq!(Locale::negotiate(None, Some("de, fr")), Locale::Zh);
        assert_eq!(Locale::negotiate(None, Some("en;q=0")), Locale::Zh);
    }

    #[test]
    fn times_are_china_standard_time_in_the_language_format() {
        let t = time::macros::datetime!(2026-11-25 02:33 UTC);
        assert_eq!(Locale::Zh.time(t), "2026-11-25 10:33");
        assert_eq!(Locale::En.time(t), "25 Nov 2026, 10:33");
    }

    #[test]
    fn every_key_exists_in_every_language() {
        let zh = keys(Locale::Zh);
        let en = keys(Locale::En);
        assert!(zh.len() > 10);
        let missing_en: Vec<_> = zh.iter().filter(|k| !en.contains(k)).collect();
        let missing_zh: Vec<_> = en.iter().filter(|k| !zh.contains(k)).collect();
        assert!(missing_en.is_empty(), "no English for {missing_en:?}");
        assert!(missing_zh.is_empty(), "no Chinese for {missing_zh:?}");
        assert_eq!(Locale::En.t("nav.sign_in"), "Sign in");
        assert_eq!(
            Locale::Zh.tf("case.heading", &[("number", "2026-1")]),
            "事故 2026-1"
        );
    }

    /// Text a template shows without the catalog: what is left of each template once template
    /// code and markup are removed (visible attributes kept), if it contains a letter.
    fn literals(template: &str) -> Vec<String> {
        // Technical names, the same in every language.
        const ALLOWED: [&str; 9] = [
            "XXXXX-XXXXX",
            "SHA-256",
            "SM2",
            "SM3",
            "PEM",
            "JWK",
            "sha256sum",
            "-c",
            "SHA256SUMS",
        ];
        let mut text = template.to_owned();
        for (open, close) in [
            ("{#", "#}"),
            ("{%", "%}"),
            ("{{", "}}"),
            ("<script", "</script>"),
        ] {
            while let Some(start) = text.find(open) {
                let Some(len) = text[start..].find(close) else {
                    break;
                };
                text.replace_range(start..start + len + close.len(), " ");
            }
        }
        let mut visible = String::new();
        let mut rest = text.as_str();
        while let Some(lt) = rest.find('<') {
            visible.push_str(&rest[..lt]);
            visible.push(' ');
            let Some(gt) = rest[lt..].find('>') else {
                break;
            };
            let tag = &rest[lt..lt + gt];
            for attr in ["alt=\"", "title=\"", "placeholder=\"", "aria-label=\""] {
                if let Some(at) = tag.find(attr) {
                    let value = &tag[at + attr.len()..];
                    visible.push_str(value.split('"').next().unwrap_or(""));
                    visible.push(' ');
                }
            }
            rest = &rest[lt + gt + 1..];
        }
        visible.push_str(rest);
        visible
            .split(|c: char| c.is_whitespace())
            .filter(|w| w.chars().any(char::is_alphabetic))
            .filter(|w| !ALLOWED.contains(w))
            .map(str::to_owned)
            .collect()
    }

    fn templates() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "html") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path.display().to_string(), text));
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
            &mut out,
        );
        out
    }

    #[test]
    fn the_literal_finder_finds_literals() {
        assert_eq!(
            literals("<p class=\"x\">{{ layout.t(\"a.b\") }} 登录</p>{% if x %}{{ y }}{% endif %}"),
            ["登录"]
        );
        assert_eq!(literals("<img alt=\"图片\" src=\"/x\"> · 42"), ["图片"]);
        assert!(literals("<a href=\"/x\">{{ n }}</a> （{{ m }}）").is_empty());
    }

    #[test]
    fn templates_show_only_catalog_text() {
        let mut found = Vec::new();
        for (path, text) in templates() {
            for word in literals(&text) {
                found.push(format!("{path}: {word}"));
            }
        }
        assert!(
            found.is_empty(),
            "text outside the catalog:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn every_key_a_template_names_exists() {
        let known = keys(Locale::Zh);
        let mut missing = Vec::new();
        for (path, text) in templates() {
            for call in ["layout.t(\"", "layout.tf(\""] {
                for piece in text.split(call).skip(1) {
                    let key = piece.split('"').next().unwrap_or("");
                    if !known.iter().any(|k| k == key) {
                        missing.push(format!("{path}: {key}"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys not in the catalog:\n{}",
            missing.join("\n")
        );
    }
}
