//! The mark burned into a rendered view: a few short lines naming the viewer, the case, the
//! time and the access event's code, drawn once into a coverage tile and laid over the whole
//! picture at an angle, staggered row by row, at about a fifth of full strength — light on dark
//! parts of the picture, dark on light ones — so no crop of a readable size escapes it.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::RgbImage;

/// What a rendered view says about who received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Two or three short lines: who (masked name, role, end of the identifier), the case
    /// number, the time (CST, to the minute) and the code of the access event.
    pub lines: Vec<String>,
    /// The access event's code (the first 8 hex digits of its chain hash): what staff type to
    /// trace a copy found outside.
    pub code: String,
}

/// The angle of the rows, in radians (30° rising to the right).
const ANGLE: f32 = std::f32::consts::PI / 6.0;
/// How strongly the mark covers the picture where a glyph is solid.
const OPACITY: f32 = 0.2;

/// The lines' coverage, `(width, height, values 0..1)`.
fn tile(mark: &Mark, font: &FontVec, px: f32) -> (usize, usize, Vec<f32>) {
    let scale = PxScale::from(px);
    let scaled = font.as_scaled(scale);
    let line_height = (scaled.ascent() - scaled.descent() + scaled.line_gap()).ceil();
    let widths: Vec<f32> = mark
        .lines
        .iter()
        .map(|l| l.chars().map(|c| scaled.h_advance(font.glyph_id(c))).sum())
        .collect();
    let width = widths.iter().copied().fold(1.0, f32::max).ceil() as usize + 2;
    let height = (line_height * mark.lines.len().max(1) as f32).ceil() as usize + 2;
    let mut coverage = vec![0f32; width * height];
    for (row, line) in mark.lines.iter().enumerate() {
        let mut caret = 1.0;
        let baseline = 1.0 + scaled.ascent() + line_height * row as f32;
        for c in line.chars() {
            let id = font.glyph_id(c);
            let glyph = id.with_scale_and_position(scale, point(caret, baseline));
            caret += scaled.h_advance(id);
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|x, y, c| {
                let gx = bounds.min.x as i64 + i64::from(x);
                let gy = bounds.min.y as i64 + i64::from(y);
                if gx >= 0 && gy >= 0 && (gx as usize) < width && (gy as usize) < height {
                    let at = gy as usize * width + gx as usize;
                    coverage[at] = coverage[at].max(c);
                }
            });
        }
    }
    (width, height, coverage)
}

/// Burns `mark` across the whole of `img`: text at least 2.5 % of the width high, rows at 30°,
/// each row shifted half a tile from the one before.
pub fn burn(img: &mut RgbImage, mark: &Mark, font: &FontVec) {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let px = (w.max(h) as f32 * 0.028).max(11.0);
    let (tw, th, coverage) = tile(mark, font, px);
    let period_u = tw as f32 + px * 2.0;
    let period_v = th as f32 + px * 2.5;
    let (sin, cos) = ANGLE.sin_cos();
    for y in 0..h {
        for x in 0..w {
            // Into the rows' frame: u along a row, v across rows.
            let (fx, fy) = (x as f32, y as f32);
            let u = fx * cos - fy * sin;
            let v = fx * sin + fy * cos;
            let row = (v / period_v).floor();
            let mu = (u + row * period_u / 2.0).rem_euclid(period_u);
            let mv = v.rem_euclid(period_v);
            if mu >= tw as f32 || mv >= th as f32 {
                continue;
            }
            let c = coverage[mv as usize * tw + mu as usize];
            if c <= 0.0 {
                continue;
            }
            let alpha = c * OPACITY;
            let pixel = img.get_pixel_mut(x, y);
            let [r, g, b] = pixel.0;
            let luminance = 0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b);
            let ink = if luminance > 110.0 { 0.0 } else { 255.0 };
            for channel in pixel.0.iter_mut() {
                *channel = (f32::from(*channel) * (1.0 - alpha) + ink * alpha).round() as u8;
            }
        }
    }
}
