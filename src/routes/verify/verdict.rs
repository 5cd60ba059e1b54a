//! The verdict on a checked bundle or manifest: each file's state, the signatures', and the
//! answer for a program.

use super::{FileState, Opened, Verdict, manifest_view};

/// Each file's state in the person's language, with the digests an altered one fails.
pub(super) fn file_states(files: Vec<crate::bundle::check::FileCheck>) -> Vec<FileState> {
    let locale = crate::i18n::Locale::current();
    files
        .into_iter()
        .map(|f| {
            use crate::bundle::check::FileState as S;
            let key = match f.state {
                S::Intact => "verify.file.intact",
                S::Altered => "verify.file.altered",
                S::Missing => "verify.file.missing",
                S::Unlisted => "verify.file.unlisted",
            };
            let mut state = locale.t(key).into_owned();
            if !f.mismatched.is_empty() {
                let which = f.mismatched.join(", ");
                let why = locale.tf("verify.file.mismatch", &[("digests", &which)]);
                state = format!("{state}: {why}");
            }
            FileState {
                path: f.path,
                ok: f.state == S::Intact,
                state,
                mismatched: f.mismatched,
            }
        })
        .collect()
}

/// The verdict: the Ed25519 signature's, then the SM2 signature's and timestamp's beside it.
pub(super) fn verdict_of(
    checked: &Result<Vec<u8>, crate::signing::VerifyError>,
    beside: Option<&crate::bundle::signatures::BesideCheck>,
    manifest: Option<&Vec<u8>>,
    opened: Opened,
) -> Verdict {
    let Opened { digests, files, .. } = opened;
    match (checked, beside) {
        (Ok(signed), Some(found)) => {
            let signatures: Vec<(bool, String)> = found
                .findings()
                .into_iter()
                .map(|(ok, line)| (ok, crate::i18n::pick(&line)))
                .collect();
            let refused = signatures.iter().skip(1).find(|(ok, _)| !ok);
            Verdict {
                valid: refused.is_none(),
                reason: refused.map(|(_, why)| why.clone()).unwrap_or_default(),
                json_matches: manifest.map(|m| m == signed),
                manifest: manifest_view(signed),
                files,
                digests,
                signatures,
            }
        }
        (checked, _) => Verdict {
            valid: false,
            reason: {
                use crate::signing::VerifyError;
                let locale = crate::i18n::Locale::current();
                match checked.as_ref().err() {
                    Some(VerifyError::Malformed) => locale.t("verify.error.malformed").into_owned(),
                    Some(VerifyError::Algorithm) => locale.t("verify.error.algorithm").into_owned(),
                    Some(VerifyError::OtherKey(kid)) => {
                        locale.tf("verify.error.other_key", &[("kid", kid)])
                    }
                    Some(VerifyError::BadSignature) | None => {
                        locale.t("verify.error.bad_signature").into_owned()
                    }
                }
            },
            json_matches: None,
            manifest: None,
            files,
            digests,
            signatures: Vec::new(),
        },
    }
}

/// The verdict for a program (`Accept: application/json`).
pub(super) fn json_answer(
    verdict: Verdict,
    beside: Option<&crate::bundle::signatures::BesideCheck>,
    signed: Option<Vec<u8>>,
) -> serde_json::Value {
    let time = beside.and_then(|found| match &found.timestamp {
        crate::bundle::signatures::TimestampOutcome::Valid(t) => Some(
            t.gen_time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        ),
        _ => None,
    });
    let algorithms = beside.map(|found| found.algorithms()).unwrap_or_default();
    let (intact, headline) = verdict.headline();
    serde_json::json!({
        "intact": intact,
        "headline": headline,
        "files": verdict.files.as_ref().map(|f| f.iter().map(|f| serde_json::json!({"path": f.path, "ok": f.ok, "mismatched": f.mismatched})).collect::<Vec<_>>()),
        "digests": verdict.digests,
        "valid": verdict.valid,
        "reason": (!verdict.valid).then_some(verdict.reason),
        "manifest_json_matches": verdict.json_matches,
        "signatures": verdict.signatures.iter().map(|(ok, line)| serde_json::json!({"ok": ok, "finding": line})).collect::<Vec<_>>(),
        "algorithms": algorithms,
        "timestamp": time,
        "manifest": signed.and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok()),
    })
}
