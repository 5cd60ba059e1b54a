//! The boxes of a redaction as the officer gives them — drawn in the editor or typed as numbers
//! (the keyboard's way), in per cent of the picture — checked, and kept as data (JSON in the
//! redaction's row; reasons and counts in its audit event, never the pixels).
//!
//! The form names each box's fields `box{i}.{field}` (i from 0): `page` (a PDF's page from 1),
//! `x`, `y`, `w`, `h` (per cent, from the top-left corner), `reason`, `note`, and for a video
//! `start` and `end` (seconds) and where the box is at the end, `x2`, `y2`, `w2`, `h2` (left
//! empty: it stays still). A box with no number given is an empty row and skipped.

use std::collections::{BTreeMap, HashMap};

use crate::render::redact::Rect;
use crate::vocab::RedactionReason;

use super::{RedactionError, Shape};

/// The most boxes one redaction has (rows of the form).
pub const MAX_AREAS: usize = 100;
/// The longest note of a box, in characters.
const MAX_NOTE: usize = 500;

/// One box of a picture or a PDF page.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Area {
    /// 0 for a picture, the page from 1 for a PDF.
    pub page: u32,
    pub rect: Rect,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// One box of a video, from `start` to `end` (seconds), moving in a straight line from `from`
/// to `to`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Track {
    pub start: f64,
    pub end: f64,
    pub from: Rect,
    pub to: Rect,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Every box of one redaction.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Areas {
    #[serde(default)]
    pub boxes: Vec<Area>,
    #[serde(default)]
    pub tracks: Vec<Track>,
}

/// Why box `row` is refused: `message` in both languages, "中文 (English)".
fn invalid(row: usize, message: &str) -> RedactionError {
    let n = row + 1;
    RedactionError::Invalid(format!("第 {n} 个遮挡框：{message} (box {n})"))
}

/// A number of the form in per cent as a fraction; empty is `None`.
fn percent(row: usize, field: &str, value: Option<&String>) -> Result<Option<f64>, RedactionError> {
    let Some(text) = value.map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=100.0).contains(&v) => Ok(Some(v / 100.0)),
        _ => Err(invalid(
            row,
            &format!("{field} 须为 0 到 100 之间的数 ({field} must be a number from 0 to 100)"),
        )),
    }
}

fn seconds(
    row: usize,
    (zh, en): (&str, &str),
    value: Option<&String>,
) -> Result<f64, RedactionError> {
    let text = value.map(|v| v.trim()).unwrap_or("");
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(invalid(
            row,
            &format!("请以秒填写{zh}时间 (give the {en} time in seconds)"),
        )),
    }
}

impl Areas {
    /// The boxes of a submitted form (`box{i}.{field}` pairs). Only the syntax is checked here;
    /// `check` says whether they fit the material.
    pub fn from_form<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
        video: bool,
    ) -> Result<Areas, RedactionError> {
        let mut rows: BTreeMap<usize, HashMap<&'a str, String>> = BTreeMap::new();
        for (k, v) in pairs {
            let Some((row, field)) = k.strip_prefix("box").and_then(|k| k.split_once('.')) else {
                continue;
            };
            let Ok(row) = row.parse::<usize>() else {
                continue;
            };
            if row >= MAX_AREAS {
                return Err(RedactionError::Invalid(format!(
                    "一次最多遮挡 {MAX_AREAS} 处 (at most {MAX_AREAS} boxes at a time)"
                )));
            }
            rows.entry(row).or_default().insert(field, v.to_owned());
        }
        let mut areas = Areas::default();
        for (i, f) in rows {
            let numbers = ["x", "y", "w", "h"]
                .map(|n| percent(i, n, f.get(n)))
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            if numbers.iter().all(Option::is_none) {
                continue;
            }
            let [Some(x), Some(y), Some(w), Some(h)] = numbers[..] else {
                return Err(invalid(
                    i,
                    "请填全位置和大小：左、上、宽、高 (give its place and size: left, top, width, height)",
                ));
            };
            let rect = Rect { x, y, w, h };
            let reason = f
                .get("reason")
                .map(|r| r.trim().to_owned())
                .unwrap_or_default();
            let note = f
                .get("note")
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            if video {
                let ends = ["x2", "y2", "w2", "h2"]
                    .map(|n| percent(i, n, f.get(n)))
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()?;
                let to = match ends[..] {
                    [Some(x), Some(y), Some(w), Some(h)] => Rect { x, y, w, h },
                    [None, None, None, None] => rect,
                    _ => {
                        return Err(invalid(
                            i,
                            "结束位置须填全或都不填 (give the whole end place or none of it)",
                        ));
                    }
                };
                areas.tracks.push(Track {
                    start: seconds(i, ("开始", "start"), f.get("start"))?,
                    end: seconds(i, ("结束", "end"), f.get("end"))?,
                    from: rect,
                    to,
                    reason,
                    note,
                });
            } else {
                let page = match f.get("page").map(|p| p.trim()).filter(|p| !p.is_empty()) {
                    None => 0,
                    Some(p) => p.parse::<u32>().map_err(|_| {
                        invalid(i, "页码须为正整数 (the page must be a whole number)")
                    })?,
                };
                areas.boxes.push(Area {
                    page,
                    rect,
                    reason,
                    note,
                });
            }
        }
        Ok(areas)
    }

    /// Whether these boxes make a redaction of a material of `shape`: at least one, each inside
    /// the picture, with a known reason (and a note when the reason is "other"), on a page of a
    /// PDF only, in time order for a video.
    pub fn check(&self, shape: Shape) -> Result<(), RedactionError> {
        if self.is_empty() {
            return Err(RedactionError::Invalid(
                "请至少画出或填写一个遮挡框 (draw or type at least one box)".into(),
            ));
        }
        if self.len() > MAX_AREAS {
            return Err(RedactionError::Invalid(format!(
                "一次最多遮挡 {MAX_AREAS} 处 (at most {MAX_AREAS} boxes at a time)"
            )));
        }
        if (shape == Shape::Video) != self.boxes.is_empty() {
            return Err(RedactionError::Invalid(
                "遮挡框与材料类型不符 (the boxes do not fit this kind of material)".into(),
            ));
        }
        for (i, a) in self.boxes.iter().enumerate() {
            reason_of(i, &a.reason, &a.note)?;
            if !a.rect.valid() {
                return Err(invalid(i, "超出了画面 (it lies outside the picture)"));
            }
            match (shape, a.page) {
                (Shape::Picture, 0) => {}
                (Shape::Pdf, p) if p >= 1 => {}
                (Shape::Pdf, _) => {
                    return Err(invalid(i, "请填写页码 (give its page)"));
                }
                _ => return Err(invalid(i, "图片没有页码 (a picture has no pages)")),
            }
        }
        for (i, t) in self.tracks.iter().enumerate() {
            reason_of(i, &t.reason, &t.note)?;
            if !t.from.valid() || !t.to.valid() {
                return Err(invalid(i, "超出了画面 (it lies outside the picture)"));
            }
            if t.end <= t.start {
                return Err(invalid(
                    i,
                    "结束时间须晚于开始时间 (its end must come after its start)",
                ));
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.boxes.len() + self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The boxes of page `page` (0: a picture's).
    pub fn rects(&self, page: u32) -> Vec<Rect> {
        self.boxes
            .iter()
            .filter(|a| a.page == page)
            .map(|a| a.rect)
            .collect()
    }

    /// The boxes of a PDF by page.
    pub fn pages(&self) -> BTreeMap<u32, Vec<Rect>> {
        let mut pages: BTreeMap<u32, Vec<Rect>> = BTreeMap::new();
        for a in &self.boxes {
            pages.entry(a.page).or_default().push(a.rect);
        }
        pages
    }

    fn reasons(&self) -> impl Iterator<Item = &str> {
        self.boxes
            .iter()
            .map(|a| a.reason.as_str())
            .chain(self.tracks.iter().map(|t| t.reason.as_str()))
    }

    /// How many boxes give each reason (the audit event's).
    pub fn reason_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.reasons() {
            *counts.entry(r.to_owned()).or_default() += 1;
        }
        counts
    }

    /// The reasons given, sorted, once each, comma-separated (the row's `reasons`).
    pub fn reason_codes(&self) -> String {
        self.reason_counts()
            .into_keys()
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The boxes kept in a redaction's row (an unreadable value reads as none).
    pub fn from_json(text: &str) -> Areas {
        serde_json::from_str(text).unwrap_or_default()
    }
}

fn reason_of(row: usize, reason: &str, note: &str) -> Result<RedactionReason, RedactionError> {
    let Some(reason) = RedactionReason::parse(reason) else {
        return Err(invalid(row, "请选择遮挡理由 (choose the reason for it)"));
    };
    if reason == RedactionReason::Other && note.is_empty() {
        return Err(invalid(
            row,
            "理由为“其他”时请写明说明 (explain the reason 'other' in its note)",
        ));
    }
    if note.chars().count() > MAX_NOTE || note.chars().any(char::is_control) {
        return Err(invalid(
            row,
            &format!(
                "说明不能超过 {MAX_NOTE} 字，且不能含控制字符 (its note must be at most {MAX_NOTE} characters, without control characters)"
            ),
        ));
    }
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)], video: bool) -> Result<Areas, RedactionError> {
        Areas::from_form(pairs.iter().copied(), video)
    }

    #[test]
    fn typed_boxes_are_read_in_per_cent_and_empty_rows_skipped() {
        let a = form(
            &[
                ("box0.page", "2"),
                ("box0.x", "10"),
                ("box0.y", "20"),
                ("box0.w", "30"),
                ("box0.h", "5"),
                ("box0.reason", "third_party_identity"),
                ("box1.x", ""),
                ("box1.reason", "minor"),
                ("csrf", "x"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(a.boxes.len(), 1);
        assert_eq!(a.boxes[0].page, 2);
        assert!((a.boxes[0].rect.x - 0.1).abs() < 1e-12);
        assert!(a.check(Shape::Pdf).is_ok());
        assert!(a.check(Shape::Picture).is_err(), "a picture has no page 2");
        assert_eq!(a.reason_codes(), "third_party_identity");
        assert_eq!(Areas::from_json(&a.to_json()), a);
    }

    #[test]
    fn a_box_without_a_reason_or_beyond_the_picture_is_refused() {
        let row = |reason: &str, note: &str, x: &str| {
            form(
                &[
                    ("box0.x", x),
                    ("box0.y", "0"),
                    ("box0.w", "50"),
                    ("box0.h", "50"),
                    ("box0.reason", reason),
                    ("box0.note", note),
                ],
                false,
            )
        };
        assert!(row("", "", "0").unwrap().check(Shape::Picture).is_err());
        assert!(
            row("nonsense", "", "0")
                .unwrap()
                .check(Shape::Picture)
                .is_err()
        );
        assert!(
            row("other", "", "0")
                .unwrap()
                .check(Shape::Picture)
                .is_err()
        );
        assert!(
            row("other", "路人", "0")
                .unwrap()
                .check(Shape::Picture)
                .is_ok()
        );
        assert!(
            row("minor", "", "60")
                .unwrap()
                .check(Shape::Picture)
                .is_err()
        );
        assert!(row("minor", "", "NaN").is_err());
        assert!(row("minor", "", "1e400").is_err());
        assert!(
            row("minor", "a\u{7}b", "0")
                .unwrap()
                .check(Shape::Picture)
                .is_err()
        );
        assert!(form(&[], false).unwrap().check(Shape::Picture).is_err());
        assert!(form(&[("box100.x", "1")], false).is_err());
    }

    #[test]
    fn a_video_box_moves_from_its_start_place_to_its_end_place() {
        let a = form(
            &[
                ("box0.x", "0"),
                ("box0.y", "0"),
                ("box0.w", "10"),
                ("box0.h", "10"),
                ("box0.x2", "90"),
                ("box0.y2", "90"),
                ("box0.w2", "10"),
                ("box0.h2", "10"),
                ("box0.start", "1"),
                ("box0.end", "2.5"),
                ("box0.reason", "uninvolved_plate"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(a.tracks.len(), 1);
        assert!(a.check(Shape::Video).is_ok());
        assert!((a.tracks[0].to.x - 0.9).abs() < 1e-12);
        let backwards = Areas {
            tracks: vec![Track {
                end: 0.5,
                ..a.tracks[0].clone()
            }],
            ..Areas::default()
        };
        assert!(backwards.check(Shape::Video).is_err());
    }
}
