//! Redacted copies (issue 34): boxes of solid black burned into the pixels of a picture, or of
//! every page of a PDF drawn by `pdftoppm` and put together again as a PDF of pictures (so no
//! text layer survives under a box, nor anywhere else). Metadata stays behind: the picture is
//! decoded and encoded anew. The original is only read. Video is `video::redact`.
//!
//! A box is given in fractions of the picture (0 to 1), as the editor draws it over a scaled
//! view; it is widened to whole pixels outward, so it covers at least what was drawn.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;

use super::{Raster, RenderError};

/// The width a PDF's pages are drawn at for a redacted copy: about 240 dpi for A4, so a scanned
/// record stays legible.
pub const PAGE_WIDTH: u32 = 2000;

/// One box, in fractions of the picture's width and height, from its top-left corner.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    /// Whether the numbers make a box inside the picture: finite, not empty, within 0 to 1.
    pub fn valid(&self) -> bool {
        [self.x, self.y, self.w, self.h]
            .iter()
            .all(|v| v.is_finite())
            && self.x >= 0.0
            && self.y >= 0.0
            && self.w > 0.0
            && self.h > 0.0
            && self.x + self.w <= 1.0 + 1e-9
            && self.y + self.h <= 1.0 + 1e-9
    }

    /// The pixels it covers in a `width` × `height` picture: columns `x0..x1`, rows `y0..y1`,
    /// the near edges rounded down and the far ones up.
    pub fn pixels(&self, width: u32, height: u32) -> (usize, usize, usize, usize) {
        let edge = |v: f64, size: u32, up: bool| {
            let p = v.clamp(0.0, 1.0) * f64::from(size);
            let p = if up { p.ceil() } else { p.floor() };
            (p as usize).min(size as usize)
        };
        (
            edge(self.x, width, false),
            edge(self.y, height, false),
            edge(self.x + self.w, width, true),
            edge(self.y + self.h, height, true),
        )
    }
}

/// Blacks out `rects` in `raster` (every channel 0).
pub fn burn(raster: &mut Raster, rects: &[Rect]) {
    let channels = usize::from(raster.channels);
    let stride = raster.width as usize * channels;
    for r in rects {
        let (x0, y0, x1, y1) = r.pixels(raster.width, raster.height);
        if x0 >= x1 {
            continue;
        }
        for row in y0..y1 {
            let start = row * stride + x0 * channels;
            let end = row * stride + x1 * channels;
            if let Some(span) = raster.pixels.get_mut(start..end) {
                span.fill(0);
            }
        }
    }
}

/// A picture's redacted copy at its full size: decoded under the render limits, `rects` burned
/// in, encoded as JPEG when the original is one and as PNG otherwise (no metadata either way).
/// Returns the bytes and their type.
pub async fn image(
    original: Bytes,
    content_type: &str,
    rects: Vec<Rect>,
) -> Result<(Vec<u8>, &'static str), RenderError> {
    let jpeg = content_type == "image/jpeg";
    let _slot = super::slot().await?;
    super::blocking(move || {
        let decoded = super::decode(&original)?;
        let mut raster = super::scaled(decoded, u32::MAX);
        burn(&mut raster, &rects);
        if jpeg {
            Ok((encode_jpeg(raster)?, "image/jpeg"))
        } else {
            Ok((encode_png(&raster)?, "image/png"))
        }
    })
    .await
}

fn encode_jpeg(mut raster: Raster) -> Result<Vec<u8>, RenderError> {
    let (Ok(w), Ok(h)) = (u16::try_from(raster.width), u16::try_from(raster.height)) else {
        return Err(RenderError::Unreadable(
            "too large to encode as JPEG".into(),
        ));
    };
    let channels = usize::from(raster.channels);
    super::jpeg::encode(
        &mut raster.pixels,
        (w, h),
        channels,
        super::cores(),
        |_, _| {},
    )
    .map_err(|e| RenderError::Unreadable(e.to_string()))
}

fn encode_png(raster: &Raster) -> Result<Vec<u8>, RenderError> {
    use image::ImageEncoder;
    let colour = if raster.channels == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&raster.pixels, raster.width, raster.height, colour)
        .map_err(|e| RenderError::Unreadable(e.to_string()))?;
    Ok(out)
}

/// A PDF's redacted copy written to `out`: every page of the PDF at `original` drawn at
/// `PAGE_WIDTH`, the boxes of its page (`pages`, by page number from 1) burned in, and put on a
/// page of its own. Returns the number of pages. A box on a page the PDF does not have is refused.
pub async fn pdf(
    original: &Path,
    pages: &BTreeMap<u32, Vec<Rect>>,
    out: &mut std::fs::File,
) -> Result<u32, RenderError> {
    let count = super::page_count(original).await?;
    if count > super::copy::COPY_MAX_PAGES {
        return Err(RenderError::Unreadable(format!(
            "{count} pages: redacted copies are made of at most {}",
            super::copy::COPY_MAX_PAGES
        )));
    }
    if let Some(beyond) = pages.keys().find(|p| **p == 0 || **p > count) {
        return Err(RenderError::Unreadable(format!(
            "a box is on page {beyond}, and the file has {count}"
        )));
    }
    let mut writer =
        super::copy::PdfWriter::new(std::io::BufWriter::new(out)).map_err(write_error)?;
    for page in 1..=count {
        let mut plain = super::plain_pdf(original, page, PAGE_WIDTH).await?;
        if let Some(rects) = pages.get(&page) {
            burn(&mut plain, rects);
        }
        let (width, height, channels) = (plain.width, plain.height, plain.channels);
        let jpeg = super::blocking(move || encode_jpeg(plain)).await?;
        writer
            .page(&jpeg, width, height, channels)
            .map_err(write_error)?;
    }
    writer.finish("redacted").map_err(write_error)?;
    Ok(count)
}

fn write_error(e: std::io::Error) -> RenderError {
    RenderError::Unreadable(format!("the redacted copy could not be written: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_covers_at_least_what_was_drawn() {
        let r = Rect {
            x: 0.101,
            y: 0.2,
            w: 0.3,
            h: 0.0001,
        };
        // 0.101 × 100 = 10.1 → 10; (0.401) × 100 = 40.1 → 41; a sliver is still a row.
        assert_eq!(r.pixels(100, 100), (10, 20, 41, 21));
        let mut raster = Raster {
            width: 4,
            height: 2,
            channels: 3,
            pixels: vec![200; 24],
        };
        burn(
            &mut raster,
            &[Rect {
                x: 0.5,
                y: 0.5,
                w: 0.5,
                h: 0.5,
            }],
        );
        assert_eq!(&raster.pixels[..12], &[200; 12]);
        assert_eq!(&raster.pixels[12..18], &[200; 6]);
        assert_eq!(&raster.pixels[18..], &[0; 6]);
    }

    #[test]
    fn boxes_outside_the_picture_or_not_numbers_are_invalid() {
        let ok = Rect {
            x: 0.0,
            y: 0.0,
            w: 1.0,
            h: 1.0,
        };
        assert!(ok.valid());
        for bad in [
            Rect { w: 0.0, ..ok },
            Rect { x: -0.1, ..ok },
            Rect { x: 0.5, ..ok },
            Rect { h: f64::NAN, ..ok },
            Rect {
                y: f64::INFINITY,
                ..ok
            },
        ] {
            assert!(!bad.valid(), "{bad:?}");
        }
    }
}
