use super::*;

fn font_path() -> std::path::PathBuf {
    std::path::PathBuf::from("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
}

/// A picture worth marking: a gradient, encoded as PNG.
fn picture(w: u32, h: u32) -> Bytes {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner().into()
}

fn mark(who: &str) -> Mark {
    Mark {
        lines: vec![
            format!("{who} 当事人 ·0011"),
            "京公交认字〔2026〕第00001号".into(),
            "2026-12-07 13:05 · 3fa2b1c9".into(),
        ],
        code: "3fa2b1c9".into(),
    }
}

fn font_missing() -> bool {
    let missing = !font_path().exists();
    assert!(
        !(missing && std::env::var_os("CI").is_some()),
        "CI installs fonts-noto-cjk"
    );
    missing
}

/// What a viewer of an image receives, uncached.
async fn image(
    original: Bytes,
    width: u32,
    mark: &Mark,
    font: &std::path::Path,
) -> Result<Vec<u8>, RenderError> {
    marked(plain_image(original, width).await?, mark, font).await
}

#[tokio::test]
async fn two_viewers_get_different_pictures_neither_of_them_the_original() {
    if font_missing() {
        return;
    }
    let original = picture(800, 600);
    let a = image(original.clone(), VIEW_WIDTH, &mark("张**"), &font_path())
        .await
        .unwrap();
    let b = image(original.clone(), VIEW_WIDTH, &mark("李**"), &font_path())
        .await
        .unwrap();
    assert_ne!(a, b);
    assert_ne!(a.as_slice(), original.as_ref());
    let (da, db) = (
        image::load_from_memory(&a).unwrap().to_rgb8(),
        image::load_from_memory(&b).unwrap().to_rgb8(),
    );
    assert_eq!(da.dimensions(), (800, 600), "not scaled up");
    // The mark covers the whole picture: every quarter differs from the plain gradient.
    let plain = image::load_from_memory(&original).unwrap().to_rgb8();
    for (qx, qy) in [(0, 0), (400, 0), (0, 300), (400, 300)] {
        let changed = (qx..qx + 400)
            .flat_map(|x| (qy..qy + 300).map(move |y| (x, y)))
            .filter(|&(x, y)| {
                let (p, q) = (plain.get_pixel(x, y).0, da.get_pixel(x, y).0);
                p.iter().zip(q).any(|(u, v)| u.abs_diff(v) > 24)
            })
            .count();
        assert!(
            changed > 1000,
            "quarter at {qx},{qy}: {changed} pixels marked"
        );
    }
    assert_ne!(da, db);
}

#[tokio::test]
async fn a_wide_picture_is_scaled_to_the_view_width() {
    if font_missing() {
        return;
    }
    let out = image(picture(3200, 800), VIEW_WIDTH, &mark("张**"), &font_path())
        .await
        .unwrap();
    let decoded = image::load_from_memory(&out).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (VIEW_WIDTH, 400));
}

#[test]
fn a_decompression_bomb_is_refused_before_it_is_decoded() {
    // A PNG whose header claims 100,000 × 100,000 pixels.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
    assert!(matches!(decode(&png), Err(RenderError::Unreadable(_))));
    assert!(matches!(
        decode(b"not a picture at all"),
        Err(RenderError::Unreadable(_))
    ));
}

#[test]
fn without_its_font_nothing_is_rendered_and_a_font_installed_later_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("font.ttc");
    assert!(matches!(font(&path), Err(RenderError::NoFont(_))));
    assert!(ready(&path).is_err());
    // Not a font either: still refused.
    std::fs::write(&path, b"not a font").unwrap();
    assert!(matches!(font(&path), Err(RenderError::NoFont(_))));
    if font_missing() {
        return;
    }
    // Installed now: found without a restart.
    std::fs::copy(font_path(), &path).unwrap();
    assert!(font(&path).is_ok());
    assert!(ready(&path).is_ok());
}

/// A grey test card of `side` × `side` pixels whose bytes say which one it is.
fn card(n: u8, side: u32) -> Raster {
    Raster {
        width: side,
        height: side,
        channels: 1,
        pixels: (0..side * side).map(|i| n.wrapping_add(i as u8)).collect(),
    }
}

fn key(n: u8) -> Key {
    Key::new(&format!("{n:02x}").repeat(32), 1, VIEW_WIDTH).unwrap()
}

/// The bytes of the cache's files (temporary ones included) and how many are temporary.
fn on_disk(cache: &Cache) -> (u64, usize) {
    let mut total = 0;
    let mut temporary = 0;
    for e in std::fs::read_dir(cache.dir()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name != ".lock" {
            total += e.metadata().unwrap().len();
            temporary += usize::from(name.starts_with(".tmp"));
        }
    }
    (total, temporary)
}

/// Lets the file system's clock move on between uses (modification times order the evictions).
fn tick() {
    std::thread::sleep(std::time::Duration::from_millis(15));
}

#[test]
fn the_cache_keeps_what_it_was_given_and_never_more_than_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    // Room for two 10 × 10 cards (100 bytes and a 24-byte header each), not three.
    let cache = Cache::new(dir.path(), 300);
    assert!(cache.get(&key(1)).is_none(), "empty at first");
    cache.put(&key(1), &card(1, 10)).unwrap();
    tick();
    cache.put(&key(2), &card(2, 10)).unwrap();
    tick();
    assert_eq!(
        cache.get(&key(1)),
        Some(card(1, 10)),
        "a hit, which is a use"
    );
    tick();
    cache.put(&key(3), &card(3, 10)).unwrap();
    assert!(on_disk(&cache).0 <= 300);
    assert!(cache.get(&key(2)).is_none(), "the least recently used went");
    assert_eq!(cache.get(&key(1)), Some(card(1, 10)));
    assert_eq!(cache.get(&key(3)), Some(card(3, 10)));
    for n in 4..40 {
        cache.put(&key(n), &card(n, 10)).unwrap();
        assert!(
            on_disk(&cache).0 <= 300,
            "after {n} puts: {:?}",
            on_disk(&cache)
        );
    }
    // Larger than the whole bound: not kept, and nothing evicted for it.
    cache.put(&key(99), &card(99, 20)).unwrap();
    assert!(cache.get(&key(99)).is_none());
    assert!(cache.get(&key(39)).is_some());
    // Off: nothing kept, nothing found.
    let off = Cache::new(dir.path(), 0);
    off.put(&key(50), &card(50, 10)).unwrap();
    assert!(off.get(&key(39)).is_none() && cache.get(&key(50)).is_none());
    assert!(
        Key::new("../../etc/passwd", 1, 1).is_none(),
        "only hex digests name files"
    );
}

#[test]
fn a_corrupt_cached_raster_is_a_miss_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), 1 << 20);
    cache.put(&key(7), &card(7, 16)).unwrap();
    let file = std::fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "raster"))
        .unwrap();
    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    flipped[100] ^= 0x40;
    for broken in [
        flipped,
        good[..good.len() - 1].to_vec(),
        b"junk".to_vec(),
        Vec::new(),
    ] {
        std::fs::write(&file, &broken).unwrap();
        assert!(
            cache.get(&key(7)).is_none(),
            "{} bytes of damage is a miss",
            broken.len()
        );
        cache.put(&key(7), &card(7, 16)).unwrap();
        assert_eq!(cache.get(&key(7)), Some(card(7, 16)), "replaced");
    }
}

#[test]
fn writers_at_once_share_one_bound_and_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let bound = 3 * (24 + 64 * 64);
    std::thread::scope(|s| {
        for t in 0..4u8 {
            // Each thread its own `Cache`, as two processes on one data directory would have.
            let cache = Cache::new(dir.path(), bound);
            s.spawn(move || {
                for i in 0..25u8 {
                    cache.put(&key(t * 50 + i), &card(i, 64)).unwrap();
                    let _ = cache.get(&key(t * 50 + i / 2));
                }
            });
        }
    });
    let cache = Cache::new(dir.path(), bound);
    let (total, temporary) = on_disk(&cache);
    assert!(total <= bound, "{total} > {bound}");
    assert_eq!(temporary, 0);
}

#[test]
fn gc_lists_and_removes_what_lies_beyond_the_bound_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path(), 10_000);
    for n in 1..=4 {
        cache.put(&key(n), &card(n, 10)).unwrap();
        tick();
    }
    // A writer killed mid-file.
    std::fs::write(cache.dir().join(".tmpDEAD01"), b"half a raster").unwrap();
    // The bound lowered to two cards: the two oldest are beyond it.
    let lowered = Cache::new(dir.path(), 250);
    let listed = lowered.beyond_bound(false).unwrap();
    let names: Vec<&str> = listed.beyond.iter().map(|e| &e.name[..2]).collect();
    assert_eq!(names, ["01", "02"]);
    assert_eq!((listed.kept, listed.dead_temporaries.len()), (2, 1));
    assert_eq!(
        on_disk(&cache),
        (4 * 124 + 13, 1),
        "listing removes nothing"
    );
    let removed = lowered.beyond_bound(true).unwrap();
    assert_eq!(removed.beyond.len(), 2);
    assert!(cache.get(&key(2)).is_none() && cache.get(&key(3)).is_some());
    assert_eq!(on_disk(&cache).1, 0, "the dead writer's file went too");
    // A bound of 0 empties it.
    assert_eq!(
        Cache::new(dir.path(), 0)
            .beyond_bound(true)
            .unwrap()
            .beyond
            .len(),
        2
    );
    assert_eq!(on_disk(&cache).0, 0);
}

#[test]
fn a_grey_page_is_kept_with_one_channel_and_a_coloured_one_with_three() {
    let grey = Raster {
        width: 2,
        height: 1,
        channels: 3,
        pixels: vec![10, 10, 10, 200, 200, 200],
    };
    assert_eq!(grey.squeezed().pixels, [10, 200]);
    let colour = Raster {
        width: 2,
        height: 1,
        channels: 3,
        pixels: vec![10, 10, 10, 200, 201, 200],
    };
    assert_eq!(colour.clone().squeezed(), colour);
}

#[tokio::test]
async fn the_renderers_picture_is_read_as_announced_and_refused_past_its_pixel_limit() {
    let mut ppm = b"P6\n3 2\n255\n".to_vec();
    ppm.extend(0..18u8);
    let raster = pdf::read_ppm(&mut &ppm[..], 100).await.unwrap();
    assert_eq!((raster.width, raster.height, raster.channels), (3, 2, 3));
    assert_eq!(raster.pixels, (0..18u8).collect::<Vec<_>>());
    assert!(
        pdf::read_ppm(&mut &ppm[..], 5).await.is_err(),
        "6 pixels > 5"
    );
    assert!(
        pdf::read_ppm(&mut &ppm[..ppm.len() - 1], 100)
            .await
            .is_err(),
        "short"
    );
    assert!(
        pdf::read_ppm(&mut &b"P5\n99999999 1\n255\n"[..], u64::MAX)
            .await
            .is_err()
    );
    assert!(pdf::read_ppm(&mut &b"%PDF-1.7"[..], 100).await.is_err());
}

#[tokio::test]
async fn a_grey_page_is_marked_in_grey_and_differently_for_each_viewer() {
    if font_missing() {
        return;
    }
    let page = Raster {
        width: 400,
        height: 560,
        channels: 1,
        pixels: vec![235; 400 * 560],
    };
    let a = marked(page.clone(), &mark("张**"), &font_path())
        .await
        .unwrap();
    let b = marked(page, &mark("李**"), &font_path()).await.unwrap();
    assert_ne!(a, b);
    let decoded = image::load_from_memory(&a).unwrap();
    assert!(matches!(decoded, image::DynamicImage::ImageLuma8(_)));
    let marked_pixels = decoded.to_luma8().pixels().filter(|p| p.0[0] < 215).count();
    assert!(marked_pixels > 2000, "{marked_pixels} pixels marked");
}

/// What one encoder writes for the whole picture with a restart marker after every MCU row.
fn in_one_piece(pixels: &[u8], (w, h): (u16, u16), channels: usize) -> Vec<u8> {
    let mcu = if channels == 1 { 8 } else { 16 };
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 85);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder.set_restart_interval(usize::from(w).div_ceil(mcu) as u16);
    let colour = if channels == 1 {
        jpeg_encoder::ColorType::Luma
    } else {
        jpeg_encoder::ColorType::Rgb
    };
    encoder.encode(pixels, w, h, colour).unwrap();
    out
}

#[test]
fn a_picture_encoded_in_strips_is_the_file_one_encoder_writes() {
    for (w, h, channels) in [
        (101u16, 333u16, 3usize),
        (64, 64, 3),
        (37, 250, 1),
        (1600, 40, 3),
        (9, 3, 1),
    ] {
        let pixels: Vec<u8> = (0..usize::from(w) * usize::from(h) * channels)
            .map(|i| (((i * 7919) % 251) ^ (i / 97)) as u8)
            .collect();
        let whole = in_one_piece(&pixels, (w, h), channels);
        for parts in [1, 2, 3, 5, 64] {
            let mut copy = pixels.clone();
            let mut rows_seen = std::sync::Mutex::new(Vec::new());
            let strips = jpeg::encode(&mut copy, (w, h), channels, parts, |rows, first| {
                rows_seen
                    .lock()
                    .unwrap()
                    .push((first, rows.len() / (usize::from(w) * channels)));
            })
            .unwrap();
            assert!(strips == whole, "{w}×{h}×{channels} in {parts} parts");
            let mut seen = rows_seen.get_mut().unwrap().clone();
            seen.sort();
            let mut next = 0;
            for (first, rows) in seen {
                assert_eq!(first, next, "strips cover the rows in order");
                next += rows;
            }
            assert_eq!(next, usize::from(h));
        }
        let decoded = image::load_from_memory(&whole).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (u32::from(w), u32::from(h))
        );
    }
}

#[test]
fn a_grey_bomb_under_the_allocation_limit_is_refused_from_its_header() {
    // 8,000 × 8,000 grey: 64 MB, under the decoder's allocation limit, over the pixel limit;
    // its data (one row) would be inflated, and fail, if the header were not read first.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |png: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    };
    let mut ihdr = 8_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&8_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    let mut row = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut row, &[0u8; 8_001]).unwrap();
    chunk(&mut png, b"IDAT", &row.finish().unwrap());
    chunk(&mut png, b"IEND", b"");
    match decode(&png) {
        Err(RenderError::Unreadable(why)) => assert_eq!(why, "too many pixels"),
        other => panic!("{:?}", other.map(|i| (i.width(), i.height()))),
    }
}

/// A one-page PDF whose page dictionary has `page` (its box, a rotation).
fn page_pdf(page: &str) -> tempfile::NamedTempFile {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!("<< /Type /Page /Parent 2 0 R {page} >>"),
    ];
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(b"xref\n0 4\n0000000000 65535 f \n");
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer << /Size 4 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, &pdf).unwrap();
    file
}

fn pdftoppm_missing() -> bool {
    let missing = !std::path::Path::new("/usr/bin/pdftoppm").exists();
    assert!(
        !(missing && std::env::var_os("CI").is_some()),
        "CI installs poppler-utils"
    );
    missing
}

#[tokio::test]
async fn a_page_too_large_to_draw_is_refused_and_a_turned_page_is_drawn() {
    if pdftoppm_missing() {
        return;
    }
    // 1,600 px wide, 32 million tall: pdftoppm cannot allocate it, draws 1 × 1 and exits 0.
    let tall = page_pdf("/MediaBox [0 0 10 200000]");
    let drawn = pdf::page_raster(tall.path(), 1, 1600, MAX_PIXELS).await;
    assert!(
        matches!(drawn, Err(RenderError::Unreadable(_))),
        "{:?}",
        drawn.map(|r| (r.width, r.height))
    );
    // A landscape scan turned by /Rotate: 1,600 rows, wider than that, and shown.
    let turned = page_pdf("/MediaBox [0 0 595 842] /Rotate 90");
    let raster = pdf::page_raster(turned.path(), 1, 1600, MAX_PIXELS)
        .await
        .unwrap();
    assert_eq!((raster.width, raster.height), (2265, 1600));
}

#[test]
fn a_page_too_costly_to_draw_is_given_up_inside_the_answer_deadline() {
    // `limits::answer_in_time` answers 503 after 3 database and 1 store deadlines (5 s and
    // 10 s by default): the slot wait and the child's wall time end well before, so the
    // person reads "cannot be shown online" rather than "try again" (and waits again).
    let deadline = Duration::from_secs(3 * 5 + 10);
    assert!(SLOT_WAIT + pdf::WALL + Duration::from_secs(3) <= deadline);
}
