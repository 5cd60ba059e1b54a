//! A view encoded as JPEG on every core: the picture cut into horizontal strips at MCU rows, each
//! strip marked and encoded on a thread of its own with a restart marker after every MCU row, the
//! strips' entropy-coded data joined with their restart markers renumbered. The result is the very
//! file one encoder writes with that restart interval (a unit test holds it to that), so any
//! decoder reads it; the markers cost two bytes an MCU row. An A4 page at 1,600 px took 20 ms to
//! encode on one core of the benchmark machine: a cached view has 30 ms in all.

use jpeg_encoder::{ColorType, Encoder, EncodingError, SamplingFactor};

const QUALITY: u8 = 85;

/// The marker after which entropy-coded data follows (start of scan), and the frame header.
const SOS: u8 = 0xDA;
const SOF0: u8 = 0xC0;

/// Encodes `pixels` (`channels` 1: grey, 3: RGB) as one baseline JPEG in up to `parts` strips at
/// once, `prepare` first run on each strip's rows with the index of its first row.
pub fn encode(
    pixels: &mut [u8],
    (width, height): (u16, u16),
    channels: usize,
    parts: usize,
    prepare: impl Fn(&mut [u8], usize) + Sync,
) -> Result<Vec<u8>, EncodingError> {
    if width == 0
        || height == 0
        || pixels.len() != usize::from(width) * usize::from(height) * channels
    {
        return Err(EncodingError::ZeroImageDimensions { width, height });
    }
    let colour = if channels == 1 {
        ColorType::Luma
    } else {
        ColorType::Rgb
    };
    // Grey is coded in 8 × 8 blocks; colour in 16 × 16 (chroma halved both ways).
    let mcu = if channels == 1 { 8 } else { 16 };
    let mcu_rows = usize::from(height).div_ceil(mcu);
    let per_part = mcu_rows.div_ceil(parts.clamp(1, mcu_rows.max(1))) * mcu;
    let interval = width.div_ceil(mcu as u16);
    let stride = usize::from(width) * channels;
    let strips: Vec<Result<Vec<u8>, EncodingError>> = std::thread::scope(|s| {
        let prepare = &prepare;
        let running: Vec<_> = pixels
            .chunks_mut(per_part * stride)
            .enumerate()
            .map(|(i, strip)| {
                s.spawn(move || {
                    prepare(strip, i * per_part);
                    let rows = u16::try_from(strip.len() / stride).unwrap_or(u16::MAX);
                    let mut out = Vec::with_capacity(strip.len() / 10);
                    let mut encoder = Encoder::new(&mut out, QUALITY);
                    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
                    encoder.set_restart_interval(interval);
                    encoder.encode(strip, width, rows, colour)?;
                    Ok(out)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err(malformed())))
            .collect()
    });
    let mut strips = strips.into_iter();
    let first = strips.next().ok_or_else(malformed)?;
    let mut out = first?;
    let mut restarts = (per_part / mcu) % 8;
    set_height(&mut out, height)?;
    out.truncate(out.len() - 2); // EOI
    for strip in strips {
        let strip = strip?;
        let data = &strip[entropy_start(&strip)?..strip.len() - 2];
        // The restart between the strips, then the next strip's own ones moved along.
        out.extend_from_slice(&[0xFF, 0xD0 + ((restarts + 7) % 8) as u8]);
        let mut bytes = data.iter().copied().peekable();
        while let Some(b) = bytes.next() {
            out.push(b);
            if b == 0xFF
                && let Some(&m) = bytes.peek()
                && (0xD0..=0xD7).contains(&m)
            {
                bytes.next();
                out.push(0xD0 + ((usize::from(m - 0xD0) + restarts) % 8) as u8);
            }
        }
        restarts = (restarts + strip_mcu_rows(&strip, mcu)?) % 8;
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

fn malformed() -> EncodingError {
    EncodingError::BadImageData {
        length: 0,
        required: 0,
    }
}

/// The marker segments before the entropy-coded data: `(marker, offset of its payload)`, up to
/// and including the start of scan.
fn segments(jpeg: &[u8]) -> Result<Vec<(u8, usize)>, EncodingError> {
    let mut found = Vec::new();
    let mut at = 2; // SOI
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xFF {
            return Err(malformed());
        }
        let marker = jpeg[at + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        found.push((marker, at + 4));
        at += 2 + len;
        if marker == SOS {
            return Ok(found);
        }
    }
    Err(malformed())
}

fn entropy_start(jpeg: &[u8]) -> Result<usize, EncodingError> {
    let (_, payload) = *segments(jpeg)?.last().ok_or_else(malformed)?;
    let len = usize::from(u16::from_be_bytes([jpeg[payload - 2], jpeg[payload - 1]]));
    Ok(payload - 2 + len)
}

fn frame_header(jpeg: &[u8]) -> Result<usize, EncodingError> {
    segments(jpeg)?
        .into_iter()
        .find(|(m, _)| *m == SOF0)
        .map(|(_, payload)| payload)
        .ok_or_else(malformed)
}

/// The frame's height, written as the whole picture's.
fn set_height(jpeg: &mut [u8], height: u16) -> Result<(), EncodingError> {
    let sof = frame_header(jpeg)?;
    jpeg[sof + 1..sof + 3].copy_from_slice(&height.to_be_bytes());
    Ok(())
}

fn strip_mcu_rows(jpeg: &[u8], mcu: usize) -> Result<usize, EncodingError> {
    let sof = frame_header(jpeg)?;
    Ok(usize::from(u16::from_be_bytes([jpeg[sof + 1], jpeg[sof + 2]])).div_ceil(mcu))
}
