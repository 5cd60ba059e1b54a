//! The demo's generated documents: a scene diagram drawn as a PNG and one-page PDFs of Chinese
//! text, made by the program so the demo needs no files of its own.

use std::io::Write;

/// A 640×420 scene diagram: two roads crossing, a car and an e-bike, drawn pixel by pixel.
pub(super) fn scene_diagram_png() -> Vec<u8> {
    let (w, h) = (640usize, 420usize);
    let mut px = vec![[245u8, 245, 240]; w * h];
    let mut fill = |x0: usize, y0: usize, x1: usize, y1: usize, c: [u8; 3]| {
        for y in y0..y1.min(h) {
            for x in x0..x1.min(w) {
                px[y * w + x] = c;
            }
        }
    };
    fill(0, 170, w, 250, [90, 90, 95]); // east-west road
    fill(280, 0, 360, h, [90, 90, 95]); // north-south road
    for x in (0..w).step_by(40) {
        fill(x, 208, x + 20, 212, [250, 250, 250]); // lane marks
    }
    for y in (0..h).step_by(40) {
        fill(318, y, 322, y + 20, [250, 250, 250]);
    }
    for i in 0..6 {
        fill(262 - i * 10, 160, 268 - i * 10, 260, [255, 255, 255]); // crossing stripes
    }
    fill(300, 120, 340, 190, [30, 80, 170]); // car, heading north
    fill(370, 215, 420, 230, [200, 40, 40]); // e-bike, fallen
    fill(425, 205, 440, 240, [200, 40, 40]);
    let mut raw = Vec::with_capacity((w * 3 + 1) * h);
    for y in 0..h {
        raw.push(0u8);
        for x in 0..w {
            raw.extend_from_slice(&px[y * w + x]);
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    png
}

/// A one-page A4 PDF of `lines` in Chinese, using the standard Adobe-GB1 font STSong-Light
/// (UniGB-UCS2-H encoding): readers substitute their own CJK font, so nothing is embedded.
/// Public for the browser journeys, which upload such documents too.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 16 Tf 20 TL 72 770 Td\n");
    for line in lines {
        let hex: String = line.encode_utf16().map(|u| format!("{u:04X}")).collect();
        content.push_str(&format!("<{hex}> Tj T*\n"));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [6 0 R] >>".to_owned(),
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 7 0 R >>".to_owned(),
        "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer << /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_what_they_claim() {
        assert_eq!(
            infer::get(&scene_diagram_png()).map(|t| t.mime_type()),
            Some("image/png")
        );
        let p = pdf(&["现场勘查笔录"]);
        assert_eq!(
            infer::get(&p).map(|t| t.mime_type()),
            Some("application/pdf")
        );
        // 现 is U+73B0.
        assert!(String::from_utf8_lossy(&p).contains("<73B0"));
    }
}
