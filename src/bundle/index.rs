//! 证据目录, the evidence index a court filing carries (issue 36): `证据目录.csv` (UTF-8 with a
//! byte-order mark, for spreadsheet programs) and `证据目录.html` (printable, A4, ~25 rows a
//! page). Both are drawn from the signed `manifest.json` alone — every cell is a fact the
//! manifest states — and made after it, so the HTML can carry the manifest's fingerprint (its
//! SHA-256); they are listed in `SHA256SUMS` and `SM3SUMS`, not in the manifest (a file cannot
//! name the hash of a file that names its own).

use std::collections::HashMap;

use serde_json::Value;
use uuid::Uuid;

use crate::db::entities::{account, material};
use crate::error::AppError;
use crate::vocab::Role;

/// File names inside the bundle.
pub const CSV_NAME: &str = "证据目录.csv";
pub const HTML_NAME: &str = "证据目录.html";

/// Rows on one printed page.
const ROWS_PER_PAGE: usize = 25;

/// The columns, in order (Chinese only: these are court documents; the README gives English).
const COLUMNS: [&str; 14] = [
    "序号",
    "证据名称",
    "类别",
    "来源",
    "证明对象",
    "页数",
    "原件/复制件",
    "文件名",
    "格式",
    "大小（字节）",
    "SHA-256",
    "SM3",
    "上传时间",
    "公开时间",
];

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `2026-11-25T10:33:55+08:00` (the manifest's CST) as `2026-11-25 10:33:55`.
fn cst(v: &Value) -> String {
    let t = text(v);
    match t.get(..19) {
        Some(head) if t.ends_with("+08:00") => head.replacen('T', " ", 1),
        _ => t,
    }
}

/// 原件, or 复制件 and what was done to it.
fn original_or_copy(file: &Value) -> String {
    if !file["redaction"].is_null() {
        "复制件（遮挡处理）".into()
    } else if !file["delivered"].is_null() {
        "复制件（带领取人身份标记）".into()
    } else {
        "原件".into()
    }
}

/// The format people read: the file's extension in capitals, else its type.
fn format_of(file: &Value) -> String {
    let path = text(&file["path"]);
    match path.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() && ext.len() <= 8 => ext.to_ascii_uppercase(),
        _ => text(&file["content_type"]),
    }
}

/// One row's cells for one file of the manifest, numbered `n`. The digests and size are of the
/// bytes in the bundle (a copy's where the bundle holds a copy).
fn row(n: usize, file: &Value) -> Vec<String> {
    let inside = if file["delivered"].is_null() {
        file
    } else {
        &file["delivered"]
    };
    let name = text(&file["path"]);
    let name = name.rsplit('/').next().unwrap_or_default().to_owned();
    vec![
        n.to_string(),
        text(&file["title"]),
        text(&file["kind_label"]),
        text(&file["source"]),
        text(&file["proves"]),
        text(&file["pages"]),
        original_or_copy(file),
        name,
        format_of(file),
        text(&inside["size"]),
        text(&inside["sha256"]),
        text(&inside["sm3"]),
        cst(&file["uploaded_at"]),
        cst(&file["released_at"]),
    ]
}

fn rows(manifest: &Value) -> Vec<Vec<String>> {
    manifest["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .enumerate()
                .map(|(i, f)| row(i + 1, f))
                .collect()
        })
        .unwrap_or_default()
}

/// A cell a spreadsheet would take for a formula (= + - @, or a tab or CR first) is given a
/// leading apostrophe, which spreadsheets show as text (OWASP's advice on CSV injection).
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// `证据目录.csv`: a byte-order mark (so spreadsheet programs read UTF-8), the header, one row
/// per file of the manifest, every cell neutralised.
pub fn csv(manifest: &Value) -> Vec<u8> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        // Writing to memory cannot fail.
        let _ = w.write_record(COLUMNS);
        for r in rows(manifest) {
            let _ = w.write_record(r.iter().map(|c| neutralise(c)));
        }
        let _ = w.flush();
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "@page{size:A4 landscape;margin:8mm}\
body{font-family:'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','SimSun',sans-serif;font-size:6.5pt;line-height:1.2;color:#000;margin:0}\
.page{page-break-after:always;break-after:page}.page:last-child{page-break-after:auto;break-after:auto}\
h1{font-size:13pt;text-align:center;margin:0 0 3pt}\
.head{display:flex;flex-wrap:wrap;gap:1pt 14pt;margin:0 0 3pt;font-size:7.5pt}.head div{white-space:nowrap}\
.fp{font-family:monospace;font-size:7pt}\
table{border-collapse:collapse;width:100%;table-layout:fixed}\
tr{page-break-inside:avoid;break-inside:avoid}\
th,td{border:0.5pt solid #000;padding:0.5pt 1.5pt;vertical-align:top;overflow-wrap:anywhere}\
th{background:#eee;font-weight:bold}\
td.h{font-family:monospace;font-size:5.5pt;word-break:break-all}\
.foot{text-align:right;margin-top:2pt}";

/// Column widths in per cent, in the order of `COLUMNS`.
const WIDTHS: [&str; 14] = [
    "2.5", "10", "4.5", "9", "9", "2.5", "6.5", "9", "3", "4.5", "14", "14", "5.75", "5.75",
];

/// The page's header lines: brigade, case, recipient, time, the manifest's fingerprint.
fn header(manifest: &Value, fingerprint: &str) -> String {
    let line = |label: &str, value: &str| {
        format!(
            "<div>{}：{}</div>",
            escape(label),
            escape(if value.is_empty() { "—" } else { value })
        )
    };
    format!(
        "<div class=\"head\">{}{}{}{}{}<div>清单（manifest.json）SHA-256：<span class=\"fp\">{}</span></div></div>",
        line("办案单位", &text(&manifest["brigade"])),
        line("案件编号", &text(&manifest["case_number"])),
        line("领取人", &text(&manifest["generated_for"]["label"])),
        line("生成时间", &cst(&manifest["generated_at"])),
        line("证据包编号", &text(&manifest["bundle_id"])),
        escape(fingerprint),
    )
}

/// `证据目录.html`: self-contained (inline CSS, no script, no outside reference), one A4 page
/// per 25 rows, each page with the header and its number.
pub fn html(manifest: &Value, fingerprint: &str) -> Vec<u8> {
    let rows = rows(manifest);
    let chunks: Vec<&[Vec<String>]> = if rows.is_empty() {
        vec![&[]]
    } else {
        rows.chunks(ROWS_PER_PAGE).collect()
    };
    let pages = chunks.len();
    let head = header(manifest, fingerprint);
    let cols: String = WIDTHS
        .iter()
        .map(|w| format!("<col style=\"width:{w}%\">"))
        .collect();
    let ths: String = COLUMNS
        .iter()
        .map(|c| format!("<th scope=\"col\">{}</th>", escape(c)))
        .collect();
    // The brigade is in every page's header: its name is not repeated in the 来源 cells.
    let brigade = text(&manifest["brigade"]);
    let mut body = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        body.push_str("<section class=\"page\"><h1>证据目录</h1>");
        body.push_str(&head);
        body.push_str(&format!(
            "<table><colgroup>{cols}</colgroup><thead><tr>{ths}</tr></thead><tbody>"
        ));
        for r in chunk.iter() {
            body.push_str("<tr>");
            for (j, cell) in r.iter().enumerate() {
                let class = if j == 10 || j == 11 {
                    " class=\"h\""
                } else {
                    ""
                };
                let cell = match cell.strip_prefix(brigade.as_str()) {
                    Some(rest) if j == 3 && !brigade.is_empty() => format!("本单位{rest}"),
                    _ => cell.clone(),
                };
                body.push_str(&format!("<td{class}>{}</td>", escape(&cell)));
            }
            body.push_str("</tr>");
        }
        body.push_str(&format!(
            "</tbody></table><div class=\"foot\">第 {} 页 共 {pages} 页</div></section>",
            i + 1
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>证据目录 {}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(&text(&manifest["case_number"])),
    )
    .into_bytes()
}

/// 来源 of each material: the brigade and the role and masked name of whoever uploaded it
/// ("某大队（民警 张**）"), or the party who did ("当事人 张**").
pub async fn sources(
    db: &sea_orm::DatabaseConnection,
    brigade: &str,
    chosen: &[material::Model],
) -> Result<HashMap<Uuid, String>, AppError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let ids: Vec<Uuid> = chosen.iter().map(|m| m.uploaded_by).collect();
    let uploaders: HashMap<Uuid, account::Model> = account::Entity::find()
        .filter(account::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    Ok(chosen
        .iter()
        .map(|m| {
            let source = match uploaders.get(&m.uploaded_by) {
                Some(a) if matches!(a.role, Role::Staff | Role::Admin) => {
                    format!("{brigade}（民警 {}）", masked_name(&a.display_name))
                }
                Some(a) => format!(
                    "{} {}",
                    crate::i18n::Locale::Zh.label(a.role),
                    masked_name(&a.display_name)
                ),
                None => brigade.to_owned(),
            };
            (m.id, source)
        })
        .collect())
}

/// The first character and two stars: "张**".
pub fn masked_name(name: &str) -> String {
    name.chars()
        .next()
        .map(|c| format!("{c}**"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(n: usize) -> Value {
        let files: Vec<Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "path": format!("照片/=cmd {i}.jpg"), "title": if i == 0 { "=cmd|' /C calc'!A0" } else { "现场照片" },
                    "kind_label": "现场照片", "source": "某大队", "proves": null, "pages": 1,
                    "content_type": "image/jpeg", "size": 10, "sha256": "a".repeat(64), "sm3": "b".repeat(64),
                    "uploaded_at": "2026-11-25T10:33:55+08:00", "released_at": null,
                    "redaction": if i == 1 { serde_json::json!({"id": "x"}) } else { Value::Null },
                })
            })
            .collect();
        serde_json::json!({
            "case_number": "<甲>", "brigade": "某大队", "generated_for": {"label": "当事人 张**"},
            "generated_at": "2026-11-25T10:33:55+08:00", "bundle_id": "id", "files": files,
        })
    }

    #[test]
    fn the_csv_has_a_bom_a_row_per_file_and_no_formula() {
        let bytes = csv(&manifest(3));
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().unwrap().len(), 14);
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(&rows[0][1], "'=cmd|' /C calc'!A0");
        assert_eq!(&rows[0][6], "原件");
        assert_eq!(&rows[1][6], "复制件（遮挡处理）");
        assert_eq!(&rows[0][12], "2026-11-25 10:33:55");
        assert_eq!(neutralise("-1"), "'-1");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("普通"), "普通");
    }

    #[test]
    fn the_html_is_escaped_and_paged_by_25() {
        let html = String::from_utf8(html(&manifest(30), "f".repeat(64).as_str())).unwrap();
        assert_eq!(html.matches("<section class=\"page\">").count(), 2);
        assert!(html.contains("第 2 页 共 2 页"));
        assert!(html.contains("&lt;甲&gt;"));
        assert!(!html.contains("<甲>"));
        assert!(html.contains(&"f".repeat(64)));
        assert!(!html.contains("<script") && !html.contains("http"));
    }
}
