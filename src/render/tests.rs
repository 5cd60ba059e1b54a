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
fn without_its_font_nothing_is_rendered() {
    assert!(matches!(
        font(std::path::Path::new("/nonexistent/font.ttc")),
        Err(RenderError::NoFont(_)) | Ok(_)
    ));
}
