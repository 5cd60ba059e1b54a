//! `verify BUNDLE.zip`: a downloaded bundle checked offline with this installation's keys, as the
//! public `/verify` page checks it: every file against `SHA256SUMS` (and `SM3SUMS`), the Ed25519
//! JWS, the SM2 signature and the RFC 3161 timestamp beside it. Says which algorithms were
//! checked; exits 1 naming the first thing wrong.

use super::*;

pub(super) fn verify_bundle(settings: &Settings, path: &std::path::Path) -> Result<(), Failure> {
    // Read, never made: a check on a machine without the keys says so.
    let path_ed = crate::signing::ManifestKey::path_beside(&settings.secret_key_file);
    if !path_ed.exists() {
        return Err(Failure::Other(format!(
            "no manifest key {}: run this where the portal runs",
            path_ed.display()
        )));
    }
    let mut key =
        crate::signing::ManifestKey::load_or_create(&path_ed).map_err(|e| e.to_string())?;
    let path_sm2 = settings
        .sm2_key_file
        .clone()
        .unwrap_or_else(|| crate::signing::Sm2Key::path_beside(&settings.secret_key_file));
    if path_sm2.exists() {
        let sm2 = crate::signing::Sm2Key::load(&path_sm2).map_err(|e| e.to_string())?;
        key = key.with_sm2(std::sync::Arc::new(sm2));
    }
    let open = || {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let checked = crate::bundle::check::check_zip(open()?, u64::MAX)
        .map_err(|e| crate::i18n::pick_in(crate::i18n::Locale::En, &e.to_string()))?;
    let beside = crate::bundle::signatures::read_beside(open()?);
    let mut problems = Vec::new();
    match &checked.files {
        None => problems.push("the bundle has no SHA256SUMS".to_owned()),
        Some(files) => {
            let bad: Vec<&str> = files
                .iter()
                .filter(|f| f.state != crate::bundle::check::FileState::Intact)
                .map(|f| f.path.as_str())
                .collect();
            println!(
                "files: {} checked, {} intact",
                files.len(),
                files.len() - bad.len()
            );
            for path in &bad {
                problems.push(format!("{path}: changed, missing or added after signing"));
            }
        }
    }
    let jws = checked.jws.unwrap_or_default();
    match key.verify(&jws) {
        Err(e) => problems.push(format!(
            "Ed25519: {}",
            crate::i18n::pick_in(crate::i18n::Locale::En, &e.to_string())
        )),
        Ok(signed) => {
            println!("Ed25519: valid (key {})", key.kid());
            if checked.manifest_json.as_deref() != Some(&signed[..]) {
                problems.push("manifest.json differs from the signed manifest".to_owned());
            }
            let found = crate::bundle::signatures::check_beside(&key, &signed, &beside);
            for (ok, line) in found.findings().into_iter().skip(1) {
                let line = crate::i18n::pick_in(crate::i18n::Locale::En, &line);
                if ok {
                    println!("{line}");
                } else {
                    problems.push(line);
                }
            }
            println!("algorithms checked: {}", found.algorithms().join(", "));
        }
    }
    match problems.first() {
        None => {
            println!("the bundle is intact");
            Ok(())
        }
        Some(first) => {
            for p in &problems[1..] {
                eprintln!("error: {p}");
            }
            Err(Failure::Other(first.clone()))
        }
    }
}
