//! Files made by the tests for the rendering tests (issue 32): PDFs as scanners, drawing
//! programs and Chinese office suites write them, photos carrying EXIF GPS, and hostile files
//! (deep nesting, huge pages, decompression bombs, a truncated and an encrypted one). Written
//! by hand, byte by byte, so that each is exactly the case it names.

/// A PDF of `objects` (numbered from 1; object 1 the catalog), a cross-reference table and a
/// trailer with `trailer_extra` added.
pub fn pdf(objects: &[Vec<u8>], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let size = objects.len() + 1;
    out.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f \n").as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer << /Size {size} /Root 1 0 R {trailer_extra}>>\nstartxref\n{xref}\n%%EOF\n"
        )
        .as_bytes(),
    );
    out
}

/// A stream object: `dict` (without the length) and `data`.
pub fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< /Length {} {dict} >>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

fn obj(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// A one-page PDF: page dictionary extras `page` (MediaBox, Resources, …), its content, and
/// further objects from number 5 on.
pub fn one_page(page: &str, content: &[u8], more: Vec<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        obj("<< /Type /Catalog /Pages 2 0 R >>"),
        obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        obj(&format!(
            "<< /Type /Page /Parent 2 0 R /Contents 4 0 R {page} >>"
        )),
        stream("", content),
    ];
    objects.extend(more);
    pdf(&objects, "")
}

const A4: &str = "/MediaBox [0 0 595 842]";

/// An A4 page with nothing on it: what a page without text looks like rendered.
pub fn blank_page() -> Vec<u8> {
    one_page(A4, b"", vec![])
}

/// A scanned page: a greyscale JPEG (`/DCTDecode`) filling an A4 page.
pub fn scanned() -> Vec<u8> {
    let (w, h) = (620u32, 877u32);
    let page = image::GrayImage::from_fn(w, h, |x, y| {
        // Paper with lines of "type" and the grain of a scanner.
        let line = (y / 12) % 3 != 0 && x > 60 && x < 560 && (x / 7 + y / 12) % 5 != 0;
        let grain = ((x * 7919 + y * 104_729) % 23) as u8;
        image::Luma([if line { 40 + grain } else { 230 + grain / 2 }])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&page)
        .unwrap();
    one_page(
        &format!("{A4} /Resources << /XObject << /Scan 5 0 R >> >>"),
        b"q 595 0 0 842 0 0 cm /Scan Do Q",
        vec![stream(
            &format!(
                "/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode"
            ),
            &jpeg,
        )],
    )
}

/// A scene diagram as drawing programs write it: roads, lanes, two cars, a skid mark, a north
/// arrow and labels, all vector.
pub fn scene_diagram() -> Vec<u8> {
    let content = b"1 w 0 0 0 RG\n\
        50 380 495 80 re S 297 50 80 742 re S\n\
        [12 8] 0 d 50 420 m 545 420 l S 337 50 m 337 792 l S [] 0 d\n\
        0.8 0.1 0.1 rg 150 395 60 22 re f 0.1 0.2 0.8 rg 317 470 22 50 re f\n\
        0 g 3 w 210 406 m 250 410 280 440 317 470 c S 1 w\n\
        500 700 m 510 740 l 520 700 l h f\n\
        BT /F1 14 Tf 505 745 Td (N) Tj ET\n\
        BT /F1 12 Tf 150 370 Td (Vehicle A) Tj 170 110 Td (Vehicle B) Tj ET\n\
        BT /F1 10 Tf 60 60 Td (Scale 1:200  Survey 2026-11-20 08:30) Tj ET";
    one_page(
        &format!("{A4} /Resources << /Font << /F1 5 0 R >> >>"),
        content,
        vec![obj(
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        )],
    )
}

/// A page of Chinese text in a font that is not embedded (`/BaseFont /SimSun` and the like, as
/// Chinese government PDFs are written), CID-keyed, `/UniGB-UCS2-H`: the renderer has to
/// substitute a CJK font, or the text is gone.
pub fn cjk_not_embedded(font: &str) -> Vec<u8> {
    let text: String = "道路交通事故认定书第二〇二六号"
        .encode_utf16()
        .map(|u| format!("{u:04X}"))
        .collect();
    let content =
        format!("BT /F1 40 Tf 40 760 Td <{text}> Tj 0 -60 Td <{text}> Tj 0 -60 Td <{text}> Tj ET");
    one_page(
        &format!("{A4} /Resources << /Font << /F1 5 0 R >> >>"),
        content.as_bytes(),
        vec![
            obj(&format!(
                "<< /Type /Font /Subtype /Type0 /BaseFont /{font} /Encoding /UniGB-UCS2-H /DescendantFonts [6 0 R] >>"
            )),
            obj(&format!(
                "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{font} /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> /FontDescriptor 7 0 R /DW 1000 >>"
            )),
            obj(&format!(
                "<< /Type /FontDescriptor /FontName /{font} /Flags 6 /FontBBox [0 -141 1000 859] /ItalicAngle 0 /Ascent 859 /Descent -141 /CapHeight 700 /StemV 80 >>"
            )),
        ],
    )
}

/// A page of Chinese text in a font embedded in the file (a Type 3 font whose glyphs for 事 and
/// 故 are drawings, with a `/ToUnicode` map): shown as the file draws it.
pub fn cjk_embedded() -> Vec<u8> {
    let glyph_a =
        b"1000 0 0 0 1000 1000 d1 100 450 800 90 re f 450 50 90 900 re f 200 650 600 220 re f";
    let glyph_b =
        b"1000 0 0 0 1000 1000 d1 100 100 350 800 re f 550 100 350 350 re f 550 550 350 350 re f";
    let to_unicode = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
        /CMapName /T3 def 1 begincodespacerange <00> <FF> endcodespacerange\n\
        2 beginbfchar <41> <4E8B> <42> <6545> endbfchar endcmap CMapName currentdict /CMap defineresource pop end end";
    one_page(
        &format!("{A4} /Resources << /Font << /T3 5 0 R >> >>"),
        b"BT /T3 60 Tf 40 720 Td (ABABABAB) Tj 0 -80 Td (BABABABA) Tj 0 -80 Td (ABABABAB) Tj ET",
        vec![
            obj(
                "<< /Type /Font /Subtype /Type3 /FontMatrix [0.001 0 0 0.001 0 0] /FontBBox [0 0 1000 1000] /CharProcs << /shi 6 0 R /gu 7 0 R >> /Encoding << /Type /Encoding /Differences [65 /shi /gu] >> /FirstChar 65 /LastChar 66 /Widths [1000 1000] /Resources << >> /ToUnicode 8 0 R >>",
            ),
            stream("", glyph_a),
            stream("", glyph_b),
            stream("", to_unicode),
        ],
    )
}

/// A PDF of `pages` pages, each saying its number.
pub fn many_pages(pages: usize) -> Vec<u8> {
    let mut objects = vec![
        obj("<< /Type /Catalog /Pages 2 0 R >>"),
        obj(&format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            (0..pages)
                .map(|i| format!("{} 0 R", 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(" ")
        )),
        obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
    ];
    for i in 0..pages {
        objects.push(obj(&format!(
            "<< /Type /Page /Parent 2 0 R {A4} /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        )));
        let text = format!("BT /F1 48 Tf 72 700 Td (Page {} of {pages}) Tj ET", i + 1);
        objects.push(stream("", text.as_bytes()));
    }
    pdf(&objects, "")
}

/// A TIFF block of EXIF data holding a GPS position (39°54'27" N, 116°23'17" E), big-endian.
pub fn exif_gps() -> Vec<u8> {
    let mut t = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    // IFD0: one entry, GPSInfo (0x8825, LONG) → the GPS IFD at 26.
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 26]);
    t.extend_from_slice(&0u32.to_be_bytes());
    // The GPS IFD: latitude and longitude with their hemispheres; the rationals at 80 and 104.
    t.extend_from_slice(&4u16.to_be_bytes());
    t.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    t.extend_from_slice(&[0, 2, 0, 5, 0, 0, 0, 3, 0, 0, 0, 80]);
    t.extend_from_slice(&[0, 3, 0, 2, 0, 0, 0, 2, b'E', 0, 0, 0]);
    t.extend_from_slice(&[0, 4, 0, 5, 0, 0, 0, 3, 0, 0, 0, 104]);
    t.extend_from_slice(&0u32.to_be_bytes());
    for (n, d) in [
        (39u32, 1u32),
        (54, 1),
        (2700, 100),
        (116, 1),
        (23, 1),
        (1700, 100),
    ] {
        t.extend_from_slice(&n.to_be_bytes());
        t.extend_from_slice(&d.to_be_bytes());
    }
    assert_eq!(t.len(), 128);
    t
}

/// What betrays EXIF GPS in a file: the EXIF marker, the TIFF header, the longitude's degrees.
pub fn carries_exif(bytes: &[u8]) -> bool {
    let longitude = [0u8, 0, 0, 116, 0, 0, 0, 1, 0, 0, 0, 23];
    [&b"Exif"[..], b"MM\x00\x2a", b"eXIf", b"EXIF", &longitude]
        .iter()
        .any(|needle| bytes.windows(needle.len()).any(|w| w == *needle))
}

fn street_photo() -> image::RgbImage {
    image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([
            (x * 255 / 800) as u8,
            (y * 255 / 600) as u8,
            ((x + y) % 200) as u8,
        ])
    })
}

/// A JPEG photo as a phone writes it: an APP1 EXIF segment with the GPS position after SOI.
pub fn jpeg_with_gps() -> Vec<u8> {
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 85)
        .encode_image(&street_photo())
        .unwrap();
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend(exif_gps());
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((segment.len() + 2) as u16).to_be_bytes());
    out.extend(segment);
    out.extend_from_slice(&plain[2..]);
    out
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

/// A PNG photo with an `eXIf` chunk holding the GPS position.
pub fn png_with_gps() -> Vec<u8> {
    let mut plain = std::io::Cursor::new(Vec::new());
    street_photo()
        .write_to(&mut plain, image::ImageFormat::Png)
        .unwrap();
    let plain = plain.into_inner();
    // Signature (8) and IHDR (25), then the EXIF chunk.
    let mut out = plain[..33].to_vec();
    out.extend(png_chunk(b"eXIf", &exif_gps()));
    out.extend_from_slice(&plain[33..]);
    out
}

/// A WebP photo in the extended format (`VP8X`) with an `EXIF` chunk holding the GPS position.
pub fn webp_with_gps() -> Vec<u8> {
    let photo = street_photo();
    let mut simple = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut simple)
        .encode(
            photo.as_raw(),
            photo.width(),
            photo.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0x08, 0, 0, 0]);
    body.extend_from_slice(&(photo.width() - 1).to_le_bytes()[..3]);
    body.extend_from_slice(&(photo.height() - 1).to_le_bytes()[..3]);
    body.extend_from_slice(&simple[12..]);
    let exif = exif_gps();
    body.extend_from_slice(b"EXIF");
    body.extend_from_slice(&(exif.len() as u32).to_le_bytes());
    body.extend(exif);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// A zlib stream that inflates to `total` bytes of `byte`: one MiB deflated once into a block
/// that refers only to itself, repeated, the rest likewise, then the final empty block and the
/// Adler-32 — a bomb in kilobytes, made without deflating the whole.
pub fn zlib_bomb(byte: u8, total: u64) -> Vec<u8> {
    const MIB: u64 = 1 << 20;
    let block = |len: u64| {
        let mut deflater = flate2::Compress::new(flate2::Compression::best(), false);
        let mut out = Vec::with_capacity(64 * 1024);
        deflater
            .compress_vec(
                &vec![byte; len as usize],
                &mut out,
                flate2::FlushCompress::Sync,
            )
            .unwrap();
        assert_eq!(deflater.total_in(), len, "deflated whole");
        out
    };
    let whole = block(MIB);
    let mut out = vec![0x78, 0xDA];
    for _ in 0..total / MIB {
        out.extend_from_slice(&whole);
    }
    if !total.is_multiple_of(MIB) {
        out.extend(block(total % MIB));
    }
    // A final, empty fixed-Huffman block.
    out.extend_from_slice(&[0x03, 0x00]);
    let (n, c) = (u128::from(total), u128::from(byte));
    let a = (1 + n * c) % 65521;
    let b = (n + c * n * (n + 1) / 2) % 65521;
    out.extend_from_slice(&((b << 16 | a) as u32).to_be_bytes());
    out
}

/// A PNG that declares `side` × `side` pixels (RGB, or grey) and holds `rows` of them
/// deflated: the decoder must refuse it from its header, not decompress towards gigabytes.
pub fn png_bomb(side: u32, grey: bool, rows: u32) -> Vec<u8> {
    let (colour, channels) = if grey { (0, 1) } else { (2, 3) };
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, colour, 0, 0, 0]);
    let data = zlib_bomb(0, (u64::from(side) * channels + 1) * u64::from(rows));
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", &data));
    out.extend(png_chunk(b"IEND", b""));
    out
}

/// A page whose content stream inflates to `total` bytes of spaces.
pub fn flate_bomb_pdf(total: u64) -> Vec<u8> {
    let data = zlib_bomb(b' ', total);
    pdf(
        &[
            obj("<< /Type /Catalog /Pages 2 0 R >>"),
            obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
            obj(&format!(
                "<< /Type /Page /Parent 2 0 R /Contents 4 0 R {A4} >>"
            )),
            stream("/Filter /FlateDecode", &data),
        ],
        "",
    )
}

/// A 20,000 × 20,000 grey image (400 MB of pixels) in 400 KB, drawn over an A4 page.
pub fn image_bomb_pdf() -> Vec<u8> {
    one_page(
        &format!("{A4} /Resources << /XObject << /Im 5 0 R >> >>"),
        b"q 595 0 0 842 0 0 cm /Im Do Q",
        vec![stream(
            "/Type /XObject /Subtype /Image /Width 20000 /Height 20000 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode",
            &zlib_bomb(0, 20_000 * 20_000),
        )],
    )
}

/// A page dictionary holding an array nested `depth` deep.
pub fn nested_arrays(depth: usize) -> Vec<u8> {
    let nest = format!("{A4} /Nest {}{}", "[".repeat(depth), "]".repeat(depth));
    one_page(&nest, b"", vec![])
}

/// A content stream that saves the graphics state 200,000 times and opens 100,000 arrays: the
/// renderer's memory grows until the child's address-space limit stops it.
pub fn deep_content() -> Vec<u8> {
    let mut content = b"q ".repeat(200_000);
    content.extend(b"[".repeat(100_000));
    content.extend_from_slice(b"] 0 d 0 0 m 100 100 l S");
    one_page(A4, &content, vec![])
}

/// A page `w` × `h` points (PDF viewers stop at 14,400).
pub fn page_of_size(w: u32, h: u32) -> Vec<u8> {
    one_page(
        &format!("/MediaBox [0 0 {w} {h}]"),
        b"0 0 m 1000 1000 l S",
        vec![],
    )
}

/// A PDF cut off in the middle, as an interrupted upload or copy leaves it.
pub fn truncated() -> Vec<u8> {
    let whole = many_pages(3);
    whole[..whole.len() / 2].to_vec()
}

/// A PDF encrypted with the standard security handler (RC4, revision 2) under a password no
/// one gave: the user-password check fails, nothing can be decrypted.
pub fn encrypted() -> Vec<u8> {
    let mut objects = vec![
        obj("<< /Type /Catalog /Pages 2 0 R >>"),
        obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        obj(&format!(
            "<< /Type /Page /Parent 2 0 R /Contents 4 0 R {A4} >>"
        )),
        stream("", b"\x8f\x12\x9a\x07\xc3\x55\x01\xee"),
    ];
    objects.push(obj(&format!(
        "<< /Filter /Standard /V 1 /R 2 /Length 40 /O <{}> /U <{}> /P -44 >>",
        "4F".repeat(32),
        "55".repeat(32)
    )));
    pdf(
        &objects,
        "/Encrypt 5 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>] ",
    )
}

/// MD5 (RFC 1321), for the standard security handler of PDF encryption.
fn md5(message: &[u8]) -> [u8; 16] {
    let s: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut state = [0x67452301u32, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut data = message.to_vec();
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&((message.len() as u64) * 8).to_le_bytes());
    for chunk in data.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k[i])
                .wrapping_add(m[g])
                .rotate_left(s[i]);
            (a, d, c) = (d, c, b);
            b = b.wrapping_add(rotated);
        }
        for (x, y) in state.iter_mut().zip([a, b, c, d]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 16];
    for (i, word) in state.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut s: Vec<u8> = (0..=255).collect();
    let mut j = 0u8;
    for i in 0..256 {
        j = j.wrapping_add(s[i]).wrapping_add(key[i % key.len()]);
        s.swap(i, j as usize);
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|byte| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(s[i as usize]);
            s.swap(i as usize, j as usize);
            byte ^ s[s[i as usize].wrapping_add(s[j as usize]) as usize]
        })
        .collect()
}

/// A PDF as Chinese offices often publish them: encrypted (RC4, 40 bits, revision 2) with an
/// owner password only — any reader opens it, copying is forbidden (`/P`). Its page says
/// "Survey record" in Helvetica.
pub fn permissions_only() -> Vec<u8> {
    const PAD: &[u8; 32] = b"\x28\xBF\x4E\x5E\x4E\x75\x8A\x41\x64\x00\x4E\x56\xFF\xFA\x01\x08\x2E\x2E\x00\xB6\xD0\x68\x3E\x80\x2F\x0C\xA9\xFE\x64\x53\x69\x7A";
    assert_eq!(hex::encode(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    let id = [0x5Au8; 16];
    let p: i32 = -44;
    let owner_key = &md5(&[b"owner".as_slice(), &PAD[..27]].concat())[..5];
    let o = rc4(owner_key, PAD);
    let file_key = md5(&[PAD.as_slice(), &o, &p.to_le_bytes(), &id].concat());
    let file_key = &file_key[..5];
    let u = rc4(file_key, PAD);
    let content = b"BT /F1 48 Tf 72 700 Td (Survey record) Tj 0 -60 Td (Survey record) Tj ET";
    let object_key = md5(&[file_key, &[4, 0, 0, 0, 0]].concat());
    let objects = vec![
        obj("<< /Type /Catalog /Pages 2 0 R >>"),
        obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        obj(&format!(
            "<< /Type /Page /Parent 2 0 R /Contents 4 0 R {A4} /Resources << /Font << /F1 5 0 R >> >> >>"
        )),
        stream("", &rc4(&object_key[..10], content)),
        obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
        obj(&format!(
            "<< /Filter /Standard /V 1 /R 2 /Length 40 /O <{}> /U <{}> /P {p} >>",
            hex::encode(o),
            hex::encode(u)
        )),
    ];
    let id = hex::encode(id);
    pdf(&objects, &format!("/Encrypt 6 0 R /ID [<{id}> <{id}>] "))
}

/// A page of Chinese text in a CJK font embedded whole (`/FontFile3 /OpenType`, CID-keyed,
/// `/Identity-H`: the codes are the font's glyphs, so only the embedded font can draw them):
/// Noto Sans CJK SC taken out of Debian's collection (`None` where it is not installed).
pub fn cjk_embedded_font() -> Option<Vec<u8>> {
    let collection =
        std::fs::read("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").ok()?;
    let be32 = |at: usize| u32::from_be_bytes(collection[at..at + 4].try_into().unwrap()) as usize;
    // The collection's third face (SC) as a font of its own: its tables copied after a new
    // directory that points at them.
    let face = be32(12 + 4 * 2);
    let tables = u16::from_be_bytes([collection[face + 4], collection[face + 5]]) as usize;
    let mut otf = collection[face..face + 12].to_vec();
    let mut data = Vec::new();
    let start = 12 + 16 * tables;
    for i in 0..tables {
        let record = face + 12 + 16 * i;
        let (offset, length) = (be32(record + 8), be32(record + 12));
        otf.extend_from_slice(&collection[record..record + 8]);
        otf.extend_from_slice(&((start + data.len()) as u32).to_be_bytes());
        otf.extend_from_slice(&(length as u32).to_be_bytes());
        data.extend_from_slice(&collection[offset..offset + length]);
        data.resize(data.len().next_multiple_of(4), 0);
    }
    otf.extend(data);
    let font = ab_glyph::FontVec::try_from_vec_and_index(collection, 2).ok()?;
    use ab_glyph::Font;
    let glyphs: String = "道路交通事故认定书第二〇二六号"
        .chars()
        .map(|c| format!("{:04X}", font.glyph_id(c).0))
        .collect();
    let content = format!(
        "BT /F1 40 Tf 40 760 Td <{glyphs}> Tj 0 -60 Td <{glyphs}> Tj 0 -60 Td <{glyphs}> Tj ET"
    );
    let name = "NotoSansCJKsc-Regular";
    Some(one_page(
        &format!("{A4} /Resources << /Font << /F1 5 0 R >> >>"),
        content.as_bytes(),
        vec![
            obj(&format!(
                "<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H /DescendantFonts [6 0 R] >>"
            )),
            obj(&format!(
                "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /{name} /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor 7 0 R /DW 1000 >>"
            )),
            obj(&format!(
                "<< /Type /FontDescriptor /FontName /{name} /Flags 4 /FontBBox [-1000 -1000 3000 1800] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 733 /StemV 80 /FontFile3 8 0 R >>"
            )),
            stream("/Subtype /OpenType", &otf),
        ],
    ))
}
