//! Static assets (CSS, icons, a little JavaScript) compiled into the binary and served under
//! content-hashed URLs, so browsers may cache them for a year and still see every change.

use std::collections::HashMap;
use std::sync::LazyLock;

use sha2::{Digest, Sha256};

pub struct Asset {
    pub name: &'static str,
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    /// First 12 hex digits of the SHA-256 of `bytes`.
    pub hash: String,
    /// `/static/{hash}/{name}`.
    pub url: String,
}

/// Every file under `static/`. A test fails when a file there is missing from this list.
const FILES: &[(&str, &[u8])] = &[
    ("portal.css", include_bytes!("../static/portal.css")),
    ("emblem.svg", include_bytes!("../static/emblem.svg")),
    ("upload.js", include_bytes!("../static/upload.js")),
    ("viewer.js", include_bytes!("../static/viewer.js")),
    ("session.js", include_bytes!("../static/session.js")),
    ("speak.js", include_bytes!("../static/speak.js")),
    ("redact.js", include_bytes!("../static/redact.js")),
    ("passkey.js", include_bytes!("../static/passkey.js")),
    (
        "page-actions.js",
        include_bytes!("../static/page-actions.js"),
    ),
];

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(name, bytes)| {
            let hash = hex::encode(Sha256::digest(bytes))[..12].to_owned();
            let content_type = mime_guess::from_path(name)
                .first_raw()
                .unwrap_or("application/octet-stream");
            let url = format!("/static/{hash}/{name}");
            (
                name,
                Asset {
                    name,
                    bytes,
                    content_type,
                    hash,
                    url,
                },
            )
        })
        .collect()
});

pub fn get(name: &str) -> Option<&'static Asset> {
    ASSETS.get(name)
}

/// The versioned URL of a known asset (templates use this); `/static/missing/{name}` otherwise,
/// which a test catches.
pub fn url(name: &str) -> &'static str {
    ASSETS
        .get(name)
        .map_or("/static/missing", |a| a.url.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_static_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                get(&name).is_some(),
                "static/{name} is not listed in assets::FILES"
            );
        }
        assert!(url("portal.css").starts_with("/static/"));
        assert_eq!(get("portal.css").unwrap().content_type, "text/css");
    }

    /// WCAG 2.x contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        fn luminance(hex: &str) -> f64 {
            let channel = |i: usize| {
                let c =
                    f64::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap()) / 255.0;
                if c <= 0.03928 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2)
        }
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// Every text/background pair the stylesheet uses meets WCAG AA (4.5:1 for body text).
    #[test]
    fn text_colours_meet_wcag_aa() {
        let css =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/portal.css"))
                .unwrap();
        let var = |name: &str| {
            let at = css.find(&format!("--{name}: ")).unwrap() + name.len() + 4;
            css[at..at + 7].to_owned()
        };
        let (ink, muted, blue, danger) = (var("ink"), var("muted"), var("blue"), var("danger"));
        let (bg, panel) = (var("bg"), var("panel"));
        let pairs = [
            ("text on the page", ink.as_str(), bg.as_str()),
            ("text on panels", &ink, &panel),
            ("hints on panels", &muted, &panel),
            ("hints on the page", &muted, &bg),
            ("links on panels", &blue, &panel),
            ("links on the page", &blue, &bg),
            ("header and buttons", "#ffffff", &blue),
            ("field errors", &danger, &panel),
            ("alerts", &ink, "#fdf0f0"),
            ("notices", &ink, "#eef8f1"),
            ("upload done", "#1f7a3a", &panel),
            ("secondary buttons hovered", &blue, "#eef3fa"),
        ];
        for (what, fg, back) in pairs {
            let ratio = contrast(fg, back);
            assert!(ratio >= 4.5, "{what}: {fg} on {back} is {ratio:.2}:1");
        }
    }
}
