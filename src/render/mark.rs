//! The mark burned into a rendered view: a few short lines naming the viewer, the case, the
//! time and the access event's code, drawn once into a coverage tile and laid over the whole
//! picture at an angle, staggered row by row, at about a fifth of full strength — light on dark
//! parts of the picture, dark on light ones — so no crop of a readable size escapes it.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};

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

impl Mark {
    /// The mark of what `person` receives of `case` now: who (their name's first character,
    /// their role, the last four characters of their masked identifier, as the audit log shows
    /// them), the case number, the time to the minute in CST and `code`.
    pub fn for_viewer(
        person: &crate::db::entities::account::Model,
        case: &crate::db::entities::case::Model,
        code: &str,
    ) -> Mark {
        let locale = crate::i18n::Locale::current();
        let name: String = person
            .display_name
            .chars()
            .next()
            .map(|c| format!("{c}**"))
            .unwrap_or_default();
        let tail: String = {
            let chars: Vec<char> = person.login_masked.chars().collect();
            chars[chars.len().saturating_sub(4)..].iter().collect()
        };
        let now = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8));
        Mark {
            lines: vec![
                format!("{name} {} ·{tail}", locale.label(person.role)),
                case.case_number.clone(),
                format!(
                    "{} {:02}:{:02} · {code}",
                    now.date(),
                    now.hour(),
                    now.minute()
                ),
            ],
            code: code.to_owned(),
        }
    }
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

/// The mark laid out for one picture of `width` × `height` pixels, burned in strip by strip
/// (on as many threads): text at least 2.5 % of the width high, rows at 30°, each row shifted
/// half a tile from the one before.
pub struct Burner {
    tile: Tile,
    width: usize,
    channels: usize,
}

impl Burner {
    /// For pixels of `channels` bytes (1: grey, 3: RGB).
    pub fn new(mark: &Mark, font: &FontVec, (width, height): (u32, u32), channels: usize) -> Self {
        let px = (width.max(height) as f32 * 0.028).max(11.0);
        let (tw, th, coverage) = tile(mark, font, px);
        let tile = Tile {
            width: tw,
            alpha: coverage
                .iter()
                .map(|c| (c * OPACITY * 256.0).round() as u8)
                .collect(),
            size: (fixed(tw as f32), fixed(th as f32)),
            period: (tw as f32 + px * 2.0, th as f32 + px * 2.5),
        };
        Burner {
            tile,
            width: width as usize,
            channels,
        }
    }

    /// Burns the mark into `rows`, whole rows of the picture from row `first` on.
    pub fn burn(&self, rows: &mut [u8], first: usize) {
        let stride = self.width * self.channels;
        if stride == 0 {
            return;
        }
        for (y, row) in rows.chunks_exact_mut(stride).enumerate() {
            match self.channels {
                1 => burn_row::<1>(row, first + y, &self.tile),
                _ => burn_row::<3>(row, first + y, &self.tile),
            }
        }
    }
}

/// Fixed point, 16 bits of fraction: a row is walked by additions only.
fn fixed(v: f32) -> i64 {
    (v * 65536.0) as i64
}

struct Tile {
    width: usize,
    /// The coverage as blending weights out of 256, at `OPACITY`.
    alpha: Vec<u8>,
    /// Width and height, fixed point.
    size: (i64, i64),
    /// The distance from one tile to the next along a row, and between rows.
    period: (f32, f32),
}

fn burn_row<const C: usize>(row: &mut [u8], y: usize, tile: &Tile) {
    let (pu, pv) = tile.period;
    let (sin, cos) = ANGLE.sin_cos();
    // Into the rows' frame at x = 0: u along a row, v across rows; then one pixel to the right
    // adds (cos, sin), and crossing into the next row of tiles shifts u by half a tile.
    let (u, v) = (-(y as f32) * sin, y as f32 * cos);
    let band = (v / pv).floor();
    let mut mv = fixed(v - band * pv);
    let mut mu = fixed((u + band * pu / 2.0).rem_euclid(pu));
    let (step_u, step_v, half) = (fixed(cos), fixed(sin), fixed(pu / 2.0));
    let (period_u, period_v) = (fixed(pu), fixed(pv));
    for pixel in row.chunks_exact_mut(C) {
        if mu < tile.size.0 && mv < tile.size.1 {
            let a = u32::from(tile.alpha[(mv >> 16) as usize * tile.width + (mu >> 16) as usize]);
            if a > 0 {
                let luminance = if C == 1 {
                    1000 * u32::from(pixel[0])
                } else {
                    299 * u32::from(pixel[0])
                        + 587 * u32::from(pixel[1])
                        + 114 * u32::from(pixel[2])
                };
                // Light ink on dark parts of the picture, dark ink on light ones.
                let ink = if luminance > 110_000 { 0 } else { 255 * a };
                for channel in pixel.iter_mut() {
                    *channel = ((u32::from(*channel) * (256 - a) + ink + 128) >> 8) as u8;
                }
            }
        }
        mu += step_u;
        mv += step_v;
        if mv >= period_v {
            mv -= period_v;
            mu += half;
        }
        if mu >= period_u {
            mu -= period_u;
        }
    }
}
