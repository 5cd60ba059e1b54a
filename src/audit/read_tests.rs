//! Unit tests of `audit/read.rs`.

use super::*;

#[test]
fn formulas_are_neutralised() {
    assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    assert_eq!(neutralise("+1"), "'+1");
    assert_eq!(neutralise("-1"), "'-1");
    assert_eq!(neutralise("@SUM"), "'@SUM");
    assert_eq!(neutralise("张三, \"李四\""), "张三, \"李四\"");
}

#[test]
fn filters_are_checked() {
    let f = Filter::parse(
        Some(" 2026 "),
        None,
        Some("bundle.download"),
        Some("allowed"),
        Some("2026-11-01"),
        Some("2026-11-30"),
    )
    .unwrap();
    assert_eq!(f.case_number.as_deref(), Some("2026"));
    assert!(Filter::parse(None, None, Some("nope"), None, None, None).is_err());
    assert!(Filter::parse(None, None, None, Some("maybe"), None, None).is_err());
    assert!(Filter::parse(None, None, None, None, Some("2026/11/01"), None).is_err());
    assert!(
        Filter::parse(
            None,
            None,
            None,
            None,
            Some("2026-11-02"),
            Some("2026-11-01")
        )
        .is_err()
    );
}
