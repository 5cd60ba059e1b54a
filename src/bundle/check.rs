//! Checking a downloaded bundle as its recipient would (a court, an insurer, the other party's
//! lawyer): every file against `SHA256SUMS` and, in a bundle made since issue 36, `SM3SUMS`; and `manifest.jws` / `manifest.json` taken out for
//! the signature check. Blocking: run it off the async workers, on a spooled file.

use std::collections::{HashMap, HashSet};
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
    /// For an altered file, the digests its bytes no longer match ("SHA-256", "SM3").
    pub mismatched: Vec<&'static str>,
}

/// A bundle's parts as the recipient holds them.
#[derive(Debug, Default)]
pub struct BundleCheck {
    pub jws: Option<String>,
    pub manifest_json: Option<Vec<u8>>,
    /// `None` when the zip has no `SHA256SUMS`.
    pub files: Option<Vec<FileCheck>>,
    /// The digests every file was checked against: "SHA-256", and "SM3" where the bundle has
    /// `SM3SUMS` (bundles made before issue 36 have none).
    pub digests: Vec<&'static str>,
}

/// Why a file could not be read as a bundle at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("不是有效的 zip 文件 (not a valid zip file)")]
    NotAZip,
    #[error("证据包内容过大 (the bundle unpacks to too much data)")]
    TooLarge,
    #[error(
        "证据包内文件过多：此页最多核验 {} 个文件。请在此页只核验其中的 manifest.jws，并在自己的电脑上用 sha256sum -c SHA256SUMS 核对文件。 (the bundle holds too many files: this page checks at most {} files. Check only its manifest.jws here, and the files on your own computer with sha256sum -c SHA256SUMS)",
        MAX_ENTRIES,
        MAX_ENTRIES
    )]
    TooManyEntries,
}

impl CheckError {
    /// The stable code an API client is given.
    pub fn code(&self) -> &'static str {
        match self {
            CheckError::NotAZip | CheckError::TooLarge => "bundle_unreadable",
            CheckError::TooManyEntries => "bundle_too_many_entries",
        }
    }
}

/// The most entries (and `SHA256SUMS` lines) a checked zip may have. A real bundle holds a
/// case's materials and three generated files: a few thousand at the very most. Fifty thousand
/// is far above that and still bounds what a hostile zip costs: the zip reader keeps a few
/// hundred bytes per central-directory entry in memory, and the page lists every file.
pub const MAX_ENTRIES: u64 = 50_000;

/// How much of `manifest.jws` and `manifest.json` is read.
const SMALL_LIMIT: u64 = 4 * 1024 * 1024;

/// How much of `SHA256SUMS` is read: a line is 67 bytes and a path, so `MAX_ENTRIES` lines
/// with paths of a few hundred bytes fit.
const SUMS_LIMIT: u64 = 16 * 1024 * 1024;

/// The signature that opens every central-directory header of a zip.
const CENTRAL_HEADER: [u8; 4] = *b"PK\x01\x02";

/// Counts central-directory header signatures in bytes fed in order, as they arrive: an upper
/// bound on the entries any zip reader can list from them (each entry it lists begins with one,
/// at its own offset), known before the zip is opened and whichever end record the reader
/// trusts. Stored files that happen to hold the signature (a zip or `.docx` kept as evidence)
/// only raise the count, by their own few entries.
#[derive(Debug, Default)]
pub struct EntryCount {
    count: u64,
    /// The last bytes fed (at most 3): a signature may straddle two chunks.
    tail: Vec<u8>,
}

impl EntryCount {
    /// Counts the signatures in `bytes`, the next chunk of the file.
    pub fn feed(&mut self, bytes: &[u8]) {
        const KEEP: usize = CENTRAL_HEADER.len() - 1;
        // A signature split between two chunks lies in the old tail and this chunk's first
        // three bytes; neither alone can hold one whole, so nothing is counted twice.
        let mut seam = std::mem::take(&mut self.tail);
        seam.extend_from_slice(&bytes[..bytes.len().min(KEEP)]);
        self.count += signatures_in(&seam) + signatures_in(bytes);
        let mut tail = if bytes.len() >= KEEP {
            bytes[bytes.len() - KEEP..].to_vec()
        } else {
            seam
        };
        tail.drain(..tail.len().saturating_sub(KEEP));
        self.tail = tail;
    }

    /// Signatures seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

fn signatures_in(bytes: &[u8]) -> u64 {
    bytes
        .windows(CENTRAL_HEADER.len())
        .filter(|w| *w == CENTRAL_HEADER)
        .count() as u64
}

/// The files the sums cannot list: themselves, and the signature made after them (the manifest
/// itself is listed, and checked like every file).
/// (The SM2 signature and the timestamp, `bundle::signatures`, are over the manifest too.)
const UNLISTED_BY_DESIGN: [&str; 5] = [
    "SHA256SUMS",
    "SM3SUMS",
    "manifest.jws",
    "manifest.sm2.sig",
    "manifest.tsr",
];

/// The SHA-256 and SM3 of what `entry` unpacks to, in hex, taking what it unpacks from
/// `budget`; SM3 only when `sm3` (a bundle with `SM3SUMS`).
fn digests_within(
    entry: &mut impl Read,
    buf: &mut [u8],
    budget: &mut u64,
    sm3: bool,
) -> Result<(String, Option<String>), CheckError> {
    let mut sha = Sha256::new();
    let mut national = sm3.then(sm3::Sm3::new);
    loop {
        let n = entry.read(buf).map_err(|_| CheckError::NotAZip)?;
        if n == 0 {
            break;
        }
        *budget = budget.checked_sub(n as u64).ok_or(CheckError::TooLarge)?;
        sha.update(&buf[..n]);
        if let Some(h) = national.as_mut() {
            h.update(&buf[..n]);
        }
    }
    Ok((
        hex::encode(sha.finalize()),
        national.map(|h| hex::encode(h.finalize())),
    ))
}

/// A sums file's lines as (path, lower-case hex), in order.
fn parse_sums(sums: &str) -> Vec<(&str, String)> {
    sums.lines()
        .filter_map(|line| {
            let (hash, path) = line.split_once("  ")?;
            Some((path, hash.trim().to_ascii_lowercase()))
        })
        .collect()
}

/// Path → hash; a path listed twice counts as listed the first time, as `sha256sum -c` reads it.
fn index_sums<'a>(listed: &'a [(&'a str, String)]) -> HashMap<&'a str, &'a str> {
    let mut hash_of: HashMap<&str, &str> = HashMap::with_capacity(listed.len());
    for (path, hash) in listed {
        hash_of.entry(path).or_insert(hash);
    }
    hash_of
}

/// What one file's digests say against the listings (`sm3_of` only with `SM3SUMS`).
fn judge(
    name: &str,
    digests: (String, Option<String>),
    sha_of: &HashMap<&str, &str>,
    sm3_of: Option<&HashMap<&str, &str>>,
) -> (FileState, Vec<&'static str>) {
    let (sha, sm3) = digests;
    let Some(listed_sha) = sha_of.get(name) else {
        return (FileState::Unlisted, Vec::new());
    };
    let mut mismatched = Vec::new();
    if *listed_sha != sha {
        mismatched.push("SHA-256");
    }
    if let (Some(sm3_of), Some(sm3)) = (sm3_of, sm3) {
        match sm3_of.get(name) {
            Some(listed) if *listed == sm3 => {}
            Some(_) => mismatched.push("SM3"),
            None => return (FileState::Unlisted, Vec::new()),
        }
    }
    if mismatched.is_empty() {
        (FileState::Intact, mismatched)
    } else {
        (FileState::Altered, mismatched)
    }
}

/// Reads `zip` (a bundle as downloaded) and checks every file against its `SHA256SUMS`,
/// unpacking at most `max_unpacked` bytes (a hostile zip cannot make the server inflate
/// without end). Linear in the entries and the listed lines: each is looked up in a map, once.
pub fn check_zip(zip: impl Read + Seek, max_unpacked: u64) -> Result<BundleCheck, CheckError> {
    let mut archive = zip::ZipArchive::new(zip).map_err(|_| CheckError::NotAZip)?;
    if archive.len() as u64 > MAX_ENTRIES {
        return Err(CheckError::TooManyEntries);
    }
    let mut budget = max_unpacked;
    let read_small = |archive: &mut zip::ZipArchive<_>, name: &str, limit: u64| {
        let entry = archive.by_name(name).ok()?;
        let mut out = Vec::new();
        entry.take(limit).read_to_end(&mut out).ok()?;
        Some(out)
    };
    let jws = read_small(&mut archive, "manifest.jws", SMALL_LIMIT)
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let manifest_json = read_small(&mut archive, "manifest.json", SMALL_LIMIT);
    let Some(sums) = read_small(&mut archive, "SHA256SUMS", SUMS_LIMIT) else {
        return Ok(BundleCheck {
            jws,
            manifest_json,
            files: None,
            digests: Vec::new(),
        });
    };
    let sums = String::from_utf8_lossy(&sums);
    let sm3_sums = read_small(&mut archive, "SM3SUMS", SUMS_LIMIT);
    let sm3_sums = sm3_sums.as_deref().map(String::from_utf8_lossy);
    // In the listing's order (the missing ones are reported in it), and a map to look paths up.
    let listed = parse_sums(&sums);
    let sm3_listed = sm3_sums.as_deref().map(parse_sums);
    if listed.len() as u64 > MAX_ENTRIES
        || sm3_listed
            .as_ref()
            .is_some_and(|l| l.len() as u64 > MAX_ENTRIES)
    {
        return Err(CheckError::TooManyEntries);
    }
    let hash_of = index_sums(&listed);
    let sm3_of = sm3_listed.as_deref().map(index_sums);
    let mut files = Vec::with_capacity(archive.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(archive.len());
    let mut buf = vec![0u8; 64 * 1024];
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
        let digests = digests_within(&mut entry, &mut buf, &mut budget, sm3_of.is_some())?;
        let (state, mismatched) = judge(&name, digests, &hash_of, sm3_of.as_ref());
        seen.insert(name.clone());
        files.push(FileCheck {
            path: name,
            state,
            mismatched,
        });
    }
    let all_listed = listed.iter().chain(sm3_listed.iter().flatten());
    for (path, _) in all_listed {
        if seen.insert((*path).to_owned()) {
            files.push(FileCheck {
                path: (*path).to_owned(),
                state: FileState::Missing,
                mismatched: Vec::new(),
            });
        }
    }
    let mut digests = vec!["SHA-256"];
    if sm3_of.is_some() {
        digests.push("SM3");
    }
    Ok(BundleCheck {
        jws,
        manifest_json,
        files: Some(files),
        digests,
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

    #[test]
    fn sm3sums_are_checked_when_present_and_name_the_digest_that_fails() {
        let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
        let sm3 = |b: &[u8]| hex::encode(<sm3::Sm3 as Digest>::digest(b));
        let sums = format!("{}  a.pdf\n{}  b.pdf\n", sha(b"A"), sha(b"B"));
        // b.pdf's SM3 line was made for other bytes: only SM3 disagrees.
        let sm3_sums = format!("{}  a.pdf\n{}  b.pdf\n", sm3(b"A"), sm3(b"not B"));
        let zip = zip_of(&[
            ("a.pdf", b"A"),
            ("b.pdf", b"B"),
            ("SHA256SUMS", sums.as_bytes()),
            ("SM3SUMS", sm3_sums.as_bytes()),
        ]);
        let checked = check_zip(zip, 1 << 20).unwrap();
        assert_eq!(checked.digests, ["SHA-256", "SM3"]);
        let files = checked.files.unwrap();
        assert_eq!(files[0].state, FileState::Intact);
        assert_eq!(files[1].state, FileState::Altered);
        assert_eq!(files[1].mismatched, ["SM3"]);
        // A bundle made before has no SM3SUMS and is checked by SHA-256 alone.
        let old = zip_of(&[("a.pdf", b"A"), ("SHA256SUMS", sums.as_bytes())]);
        let checked = check_zip(old, 1 << 20).unwrap();
        assert_eq!(checked.digests, ["SHA-256"]);
    }

    #[test]
    fn the_entry_count_finds_every_central_header_however_the_upload_is_cut() {
        let names: Vec<String> = (0..40).map(|i| format!("f/{i}.txt")).collect();
        let bodies: Vec<Vec<u8>> = (0..40).map(|i| vec![b'x'; i]).collect();
        let entries: Vec<(&str, &[u8])> = names
            .iter()
            .zip(&bodies)
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let bytes = zip_of(&entries).into_inner();
        for size in [1, 2, 3, 4, 5, 7, 64, bytes.len()] {
            let mut count = EntryCount::default();
            for chunk in bytes.chunks(size) {
                count.feed(chunk);
            }
            assert_eq!(count.count(), 40, "in chunks of {size}");
        }
        let mut count = EntryCount::default();
        for chunk in [
            &b"xP"[..],
            b"",
            b"K\x01",
            b"\x02PK\x01\x02P",
            b"K",
            b"\x01\x02",
        ] {
            count.feed(chunk);
        }
        assert_eq!(count.count(), 3, "split across chunks, empty ones between");
    }

    #[test]
    fn a_listing_of_more_files_than_the_page_checks_is_refused() {
        let line = |i: u64| format!("{}  f/{i}\n", "0".repeat(64));
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            let stored = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            w.start_file("SHA256SUMS", stored).unwrap();
            for i in 0..=MAX_ENTRIES {
                w.write_all(line(i).as_bytes()).unwrap();
            }
            w.finish().unwrap();
        }
        out.set_position(0);
        let refused = check_zip(out, 1 << 20).unwrap_err();
        assert!(matches!(refused, CheckError::TooManyEntries));
        assert_eq!(refused.code(), "bundle_too_many_entries");
        assert!(refused.to_string().contains("50000"), "{refused}");
    }
}
