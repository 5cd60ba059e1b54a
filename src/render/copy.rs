//! Copies that say who received them (issue 32, `PORTAL_WATERMARK_COPIES`): where an
//! installation delivers burned-in copies instead of originals, a picture is re-encoded at up to
//! `COPY_WIDTH` with the person's mark, and a PDF becomes a new PDF of its pages, each drawn by
//! `pdftoppm` as a view is and marked the same way (text can no longer be selected: the copy is a
//! picture of each page, which is what makes the mark stay on it).
//!
//! The PDF is written one page at a time to a file: one page's pixels are in memory at once.

use std::io::Write;
use std::path::Path;

use super::{Mark, RenderError};

/// The widest a copy of a picture is, in pixels (a 12-megapixel photo keeps 3000 × 2250).
pub const COPY_WIDTH: u32 = 3000;
/// The most pages a PDF may have for a copy to be made of it (each page is drawn and marked).
pub const COPY_MAX_PAGES: u32 = 500;
/// A copy's page is this many points on its long side (A4's 842 pt), the short side in
/// proportion: a copy prints at the size of the paper it came from, near enough.
const LONG_SIDE_PT: f64 = 842.0;

/// A picture's copy: decoded under the same limits as a view, at most `COPY_WIDTH` wide, the
/// mark burned in, encoded as JPEG without metadata.
pub async fn image_copy(
    original: bytes::Bytes,
    mark: &Mark,
    font_path: &Path,
) -> Result<Vec<u8>, RenderError> {
    let plain = super::plain_image(original, COPY_WIDTH).await?;
    super::marked(plain, mark, font_path).await
}

/// A PDF's copy written to `out`: every page of the PDF at `original` drawn at the view's width,
/// marked, and put on a page of its own.
pub async fn pdf_copy(
    original: &Path,
    mark: &Mark,
    font_path: &Path,
    out: &mut std::fs::File,
) -> Result<(), RenderError> {
    let pages = super::page_count(original).await?;
    if pages > COPY_MAX_PAGES {
        return Err(RenderError::Unreadable(format!(
            "{pages} pages: copies are made of at most {COPY_MAX_PAGES}"
        )));
    }
    let mut writer = PdfWriter::new(std::io::BufWriter::new(out)).map_err(io)?;
    for page in 1..=pages {
        let plain = super::plain_pdf(original, page, super::VIEW_WIDTH).await?;
        let (width, height, channels) = (plain.width, plain.height, plain.channels);
        let jpeg = super::marked(plain, mark, font_path).await?;
        writer.page(&jpeg, width, height, channels).map_err(io)?;
    }
    writer.finish(&mark.code).map_err(io)?;
    Ok(())
}

fn io(e: std::io::Error) -> RenderError {
    RenderError::Unreadable(format!("the copy could not be written: {e}"))
}

/// A PDF of JPEG pages, written as it goes: each page an image XObject (`/DCTDecode`, the JPEG's
/// bytes as they are), a content stream that draws it over the whole page, and the page; the
/// page tree, the catalogue and the cross-reference table at the end.
pub struct PdfWriter<W: Write> {
    out: W,
    written: u64,
    /// Byte offset of object n at index n − 1.
    offsets: Vec<Option<u64>>,
    pages: Vec<usize>,
}

/// Object 1 is the catalogue, 2 the page tree; both are written last.
const CATALOG: usize = 1;
const PAGES: usize = 2;

impl<W: Write> PdfWriter<W> {
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut writer = PdfWriter {
            out,
            written: 0,
            offsets: vec![None, None],
            pages: Vec::new(),
        };
        // The binary comment tells transfer programs the file is not text.
        writer.raw(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")?;
        Ok(writer)
    }

    fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Starts object `n` (its offset noted).
    fn begin(&mut self, n: usize) -> std::io::Result<()> {
        if self.offsets.len() < n {
            self.offsets.resize(n, None);
        }
        self.offsets[n - 1] = Some(self.written);
        self.raw(format!("{n} 0 obj\n").as_bytes())
    }

    fn next_number(&self) -> usize {
        self.offsets.len() + 1
    }

    /// Adds a page showing `jpeg` (`width` × `height` pixels, 1 or 3 channels).
    pub fn page(
        &mut self,
        jpeg: &[u8],
        width: u32,
        height: u32,
        channels: u8,
    ) -> std::io::Result<()> {
        let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
        let scale = LONG_SIDE_PT / w.max(h);
        let (pw, ph) = (w * scale, h * scale);
        let image = self.next_number();
        self.begin(image)?;
        let space = if channels == 1 {
            "/DeviceGray"
        } else {
            "/DeviceRGB"
        };
        self.raw(
            format!(
                "<< /Type /XObject /Subtype /Image /Width {width} /Height {height} /ColorSpace {space} /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
                jpeg.len()
            )
            .as_bytes(),
        )?;
        self.raw(jpeg)?;
        self.raw(b"\nendstream\nendobj\n")?;
        let content = self.next_number();
        self.begin(content)?;
        let draw = format!("q {pw:.2} 0 0 {ph:.2} 0 0 cm /Im0 Do Q");
        self.raw(
            format!(
                "<< /Length {} >>\nstream\n{draw}\nendstream\nendobj\n",
                draw.len()
            )
            .as_bytes(),
        )?;
        let page = self.next_number();
        self.begin(page)?;
        self.raw(
            format!(
                "<< /Type /Page /Parent {PAGES} 0 R /MediaBox [0 0 {pw:.2} {ph:.2}] /Resources << /XObject << /Im0 {image} 0 R >> >> /Contents {content} 0 R >>\nendobj\n"
            )
            .as_bytes(),
        )?;
        self.pages.push(page);
        Ok(())
    }

    /// Writes the page tree, the catalogue, an information dictionary naming the copy's code,
    /// and the cross-reference table.
    pub fn finish(mut self, code: &str) -> std::io::Result<W> {
        let kids: Vec<String> = self.pages.iter().map(|p| format!("{p} 0 R")).collect();
        self.begin(PAGES)?;
        self.raw(
            format!(
                "<< /Type /Pages /Kids [{}] /Count {} >>\nendobj\n",
                kids.join(" "),
                self.pages.len()
            )
            .as_bytes(),
        )?;
        self.begin(CATALOG)?;
        self.raw(format!("<< /Type /Catalog /Pages {PAGES} 0 R >>\nendobj\n").as_bytes())?;
        let info = self.next_number();
        self.begin(info)?;
        let code: String = code.chars().filter(char::is_ascii_alphanumeric).collect();
        self.raw(
            format!("<< /Producer (evidence-portal) /Subject (copy {code}) >>\nendobj\n")
                .as_bytes(),
        )?;
        let xref = self.written;
        let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", self.offsets.len() + 1);
        for offset in &self.offsets {
            match offset {
                Some(o) => table.push_str(&format!("{o:010} 00000 n \n")),
                None => table.push_str("0000000000 65535 f \n"),
            }
        }
        table.push_str(&format!(
            "trailer\n<< /Size {} /Root {CATALOG} 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            self.offsets.len() + 1
        ));
        self.raw(table.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cross-reference table points at every object, and a reader takes the file: poppler's
    /// `pdfinfo` where it is installed.
    #[test]
    fn a_written_pdf_has_its_pages_and_a_true_cross_reference_table() {
        let jpeg = {
            let img = image::RgbImage::from_fn(40, 60, |x, y| image::Rgb([x as u8, y as u8, 7]));
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
            out.into_inner()
        };
        let mut writer = PdfWriter::new(Vec::new()).unwrap();
        writer.page(&jpeg, 40, 60, 3).unwrap();
        writer.page(&jpeg, 60, 40, 3).unwrap();
        let pdf = writer.finish("ab12cd34").unwrap();
        let text = String::from_utf8_lossy(&pdf);
        // Offsets are of bytes: the JPEGs are binary.
        let at = pdf.windows(10).rposition(|w| w == b"startxref\n").unwrap();
        let xref: usize = std::str::from_utf8(&pdf[at + 10..])
            .unwrap()
            .lines()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap();
        let table = std::str::from_utf8(&pdf[xref..]).unwrap();
        assert!(table.starts_with("xref\n0 10\n"), "{table}");
        // Every in-use entry points at "n 0 obj".
        for (n, line) in table.lines().skip(3).take(9).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            assert!(
                pdf[offset..].starts_with(format!("{} 0 obj", n + 1).as_bytes()),
                "object {} at {offset}",
                n + 1
            );
        }
        assert!(text.contains("/Count 2"));
        assert!(
            text.contains("/MediaBox [0 0 561.33 842.00]"),
            "portrait page"
        );
        assert!(
            text.contains("/MediaBox [0 0 842.00 561.33]"),
            "landscape page"
        );
        if std::path::Path::new("/usr/bin/pdfinfo").exists() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("copy.pdf");
            std::fs::write(&path, &pdf).unwrap();
            let out = std::process::Command::new("/usr/bin/pdfinfo")
                .arg(&path)
                .output()
                .unwrap();
            let info = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                info.lines()
                    .any(|l| l.starts_with("Pages:") && l.ends_with(" 2")),
                "{info}"
            );
        }
    }
}
