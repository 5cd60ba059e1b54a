//! Checking a downloaded bundle as its recipient would (a court, an insurer, the other party's
//! lawyer): every file against `SHA256SUMS`, and `manifest.jws` / `manifest.json` taken out for
//! the signature check. Blocking: run it off the async workers, on a spooled file.

use std::io::{Read, Seek};

use sha2::{Digest, Sha256};

/// What became of one file the bundle lists or holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Its bytes hash to what `SHA256SUMS` says.
    Intact,
    /// Its bytes differ from what `SHA256SUMS` says.
    Altered,
    /// Listed in `SHA256SUMS`, not in the zip.
    Missing,
    /// In the zip, not listed (added after the bundle was made).
    Unlisted,
}

#[derive(Debug)]
pub struct FileCheck {
    pub path: String,
    pub state: FileState,
}

/// A bundle's parts as the recipient holds them.
#[derive(Debug, Default)]
pub struct BundleCheck {
    pub jws: Option<String>,
    pub manifest_json: Option<Vec<u8>>,
    /// `None` when the zip has no `SHA256SUMS`.
    pub files: Option<Vec<FileCheck>>,
}

/// Why a file could not be read as a bundle at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("不是有效的 zip 文件 (not a valid zip file)")]
    NotAZip,
    #[error("证据包内容过大 (the bundle unpacks to too much data)")]
    TooLarge,
}

/// The files `SHA256SUMS` cannot list: itself, and the signature made after it (the manifest
/// itself is listed, and checked like every file).
const UNLISTED_BY_DESIGN: [&str; 2] = ["SHA256SUMS", "manifest.jws"];

/// Reads `zip` (a bundle as downloaded) and checks every file against its `SHA256SUMS`,
/// unpacking at most `max_unpacked` bytes (a hostile zip cannot make the server inflate
/// without end).
pub fn check_zip(zip: impl Read + Seek, max_unpacked: u64) -> Result<BundleCheck, CheckError> {
    let mut archive = zip::ZipArchive::new(zip).map_err(|_| CheckError::NotAZip)?;
    let mut budget = max_unpacked;
    let read_small = |archive: &mut zip::ZipArchive<_>, name: &str| -> Option<Vec<u8>> {
        let entry = archive.by_name(name).ok()?;
        let mut out = Vec::new();
        entry.take(4 * 1024 * 1024).read_to_end(&mut out).ok()?;
        Some(out)
    };
    let jws = read_small(&mut archive, "manifest.jws")
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let manifest_json = read_small(&mut archive, "manifest.json");
    let sums = read_small(&mut archive, "SHA256SUMS").map(|b| {
        String::from_utf8_lossy(&b)
            .lines()
            .filter_map(|line| {
                let (hash, path) = line.split_once("  ")?;
                Some((path.to_owned(), hash.trim().to_ascii_lowercase()))
            })
            .collect::<Vec<(String, String)>>()
    });
    let Some(sums) = sums else {
        return Ok(BundleCheck {
            jws,
            manifest_json,
            files: None,
        });
    };
    let mut files = Vec::new();
    let mut seen = Vec::new();
    for i in 0..archive.len() {
        let Ok(mut entry) = archive.by_index(i) else {
            return Err(CheckError::NotAZip);
        };
        let Ok(name) = entry.name().map(|n| n.into_owned()) else {
            return Err(CheckError::NotAZip);
        };
        if entry.is_dir() || UNLISTED_BY_DESIGN.contains(&name.as_str()) {
            continue;
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buf).map_err(|_| CheckError::NotAZip)?;
            if n == 0 {
                break;
            }
            budget = budget.checked_sub(n as u64).ok_or(CheckError::TooLarge)?;
            hasher.update(&buf[..n]);
        }
        let hash = hex::encode(hasher.finalize());
        let state = match sums.iter().find(|(path, _)| *path == name) {
            Some((_, listed)) if *listed == hash => FileState::Intact,
            Some(_) => FileState::Altered,
            None => FileState::Unlisted,
        };
        seen.push(name.clone());
        files.push(FileCheck { path: name, state });
    }
    for (path, _) in &sums {
        if !seen.contains(path) {
            files.push(FileCheck {
                path: path.clone(),
                state: FileState::Missing,
            });
        }
    }
    Ok(BundleCheck {
        jws,
        manifest_json,
        files: Some(files),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> std::io::Cursor<Vec<u8>> {
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            for (name, bytes) in entries {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                w.write_all(bytes).unwrap();
            }
            w.finish().unwrap();
        }
        out.set_position(0);
        out
    }

    #[test]
    fn every_file_is_checked_against_the_sums() {
        let sum = |b: &[u8]| hex::encode(Sha256::digest(b));
        let sums = format!(
            "{}  a.pdf\n{}  b.pdf\n{}  gone.pdf\n",
            sum(b"A"),
            sum(b"B"),
            sum(b"G")
        );
        let zip = zip_of(&[
            ("a.pdf", b"A"),
            ("b.pdf", b"B changed"),
            ("extra.pdf", b"X"),
            ("SHA256SUMS", sums.as_bytes()),
            ("manifest.jws", b" header.payload.sig \n"),
        ]);
        let checked = check_zip(zip, 1 << 20).unwrap();
        assert_eq!(checked.jws.as_deref(), Some("header.payload.sig"));
        assert_eq!(checked.manifest_json, None);
        let state = |p: &str| {
            checked
                .files
                .as_ref()
                .unwrap()
                .iter()
                .find(|f| f.path == p)
                .map(|f| f.state)
        };
        assert_eq!(state("a.pdf"), Some(FileState::Intact));
        assert_eq!(state("b.pdf"), Some(FileState::Altered));
        assert_eq!(state("extra.pdf"), Some(FileState::Unlisted));
        assert_eq!(state("gone.pdf"), Some(FileState::Missing));
        assert!(matches!(
            check_zip(std::io::Cursor::new(b"not a zip".to_vec()), 1 << 20),
            Err(CheckError::NotAZip)
        ));
        let big = zip_of(&[("SHA256SUMS", b""), ("a.bin", &[0u8; 4096])]);
        assert!(matches!(check_zip(big, 1000), Err(CheckError::TooLarge)));
    }
}
