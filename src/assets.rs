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
}
