//! Entry names and the zip layout.

use super::layout::Part;
use super::*;
use std::io::Read;

fn material(title: &str, original: &str, kind: &str) -> material::Model {
    let now = OffsetDateTime::now_utc();
    material::Model {
        id: Uuid::now_v7(),
        case_id: Uuid::nil(),
        kind: crate::vocab::MaterialKind::parse(kind).expect("a kind"),
        title: title.into(),
        original_name: original.into(),
        content_type: "image/jpeg".into(),
        size: 1,
        sha256: String::new(),
        crc32: 0,
        object_key: String::new(),
        state: crate::vocab::MaterialState::Released,
        withhold_ground: None,
        withhold_note: None,
        uploaded_by: Uuid::nil(),
        uploaded_at: now,
        decided_by: None,
        decided_at: None,
        superseded_by: None,
        sm3: None,
        proves: None,
    }
}

#[test]
fn paths_are_foldered_safe_and_distinct() {
    let paths = entry_paths(
        &[
            material("现场照片", "a.JPG", "scene_photo"),
            material("现场照片", "b.jpg", "scene_photo"),
            material("现场照片.jpg", "c.jpeg", "scene_photo"),
            material("../../etc/passwd", "x", "other"),
            material(" 图:一 ", "d.pdf", "scene_diagram"),
        ],
        &Default::default(),
    );
    assert_eq!(
        paths,
        [
            "现场照片/现场照片.jpg",
            "现场照片/现场照片 (2).jpg",
            "现场照片/现场照片.jpg.jpeg",
            "其他/_.._etc_passwd.jpg",
            "现场图/图_一.pdf",
        ]
    );
}

#[test]
fn a_title_ending_in_a_kelvin_sign_keeps_its_name() {
    // U+212A lower-cases to ASCII `k`: the title "scan.\u{212A}" with a file `scan.k`.
    let paths = entry_paths(
        &[material("scan.\u{212A}", "scan.k", "other")],
        &Default::default(),
    );
    assert_eq!(paths, ["其他/scan.\u{212A}.k"]);
    let paths = entry_paths(
        &[material("报告.PDF", "r.pdf", "other")],
        &Default::default(),
    );
    assert_eq!(paths, ["其他/报告.pdf"]);
}

proptest::proptest! {
    /// Any titles and file names at all: one path each, never a panic, in its kind's folder,
    /// with no separator, control character or reserved character in the file name, and
    /// distinct ignoring case.
    #[test]
    fn entry_names_are_safe_for_any_unicode(
        names in proptest::collection::vec(("\\PC{0,30}|[.kK\u{212A}\u{130}ß ]{0,6}", "\\PC{0,12}"), 1..8)
    ) {
        let materials: Vec<material::Model> = names
            .iter()
            .map(|(title, original)| material(title, original, "other"))
            .collect();
        let paths = entry_paths(&materials, &Default::default());
        proptest::prop_assert_eq!(paths.len(), materials.len());
        let mut seen = std::collections::HashSet::new();
        for path in &paths {
            let name = path.strip_prefix("其他/").unwrap();
            proptest::prop_assert!(!name.is_empty());
            proptest::prop_assert!(!name.chars().any(|c| c.is_control() || "/\\:*?\"<>|".contains(c)), "{}", name);
            proptest::prop_assert!(seen.insert(path.to_lowercase()), "{}", path);
        }
    }
}

/// The layout's bytes are a valid zip that the `zip` crate reads back, entries and CRCs.
#[test]
fn a_layout_filled_with_its_objects_is_a_valid_zip() {
    let data: Vec<Vec<u8>> = vec![b"first file".to_vec(), vec![7u8; 70_000], Vec::new()];
    let entries: Vec<Entry> = data
        .iter()
        .enumerate()
        .map(|(i, d)| Entry::Object {
            path: format!("现场图/图{i}.bin"),
            key: ObjectKey::from_stored(&format!("t/{i}")).unwrap(),
            size: d.len() as u64,
            crc32: crc32fast::hash(d),
            modified: zip::DateTime::default(),
        })
        .chain(std::iter::once(Entry::Generated {
            path: "SHA256SUMS".into(),
            bytes: b"abc  x\n".repeat(100),
            modified: zip::DateTime::default(),
        }))
        .collect();
    let layout = Layout::build(entries).unwrap();
    let mut bytes = Vec::new();
    for (start, part) in &layout.parts {
        assert_eq!(*start, bytes.len() as u64, "parts are contiguous");
        match part {
            Part::Literal(b) => bytes.extend_from_slice(b),
            Part::Object { key, .. } => {
                let i: usize = key.as_str().trim_start_matches("t/").parse().unwrap();
                bytes.extend_from_slice(&data[i]);
            }
        }
    }
    assert_eq!(bytes.len() as u64, layout.total);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(archive.len(), 4);
    for (i, d) in data.iter().enumerate() {
        let mut f = archive.by_name(&format!("现场图/图{i}.bin")).unwrap();
        let mut read = Vec::new();
        f.read_to_end(&mut read).unwrap(); // checks the CRC
        assert_eq!(&read, d);
        assert_eq!(f.compression(), CompressionMethod::Stored);
    }
    let sums = archive.by_name("SHA256SUMS").unwrap();
    assert_eq!(sums.compression(), CompressionMethod::Deflated);
}
