//! The settings' parsing: defaults, files, variables, and every refusal naming its setting.

use super::*;
use std::collections::HashMap;

fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_sources(None, |k| map.get(k).cloned())
}

#[test]
fn defaults_are_the_embedded_shape() {
    let s = load(&[]).unwrap();
    assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(s.database_url.expose(), "sqlite://data/portal.db?mode=rwc");
    assert_eq!(
        s.store_url,
        StoreUrl::Directory(PathBuf::from("data/objects"))
    );
    assert_eq!(s.secret_key_file, PathBuf::from("data/secret.key"));
    assert_eq!(s.max_upload_bytes, DEFAULT_MAX_UPLOAD_BYTES);
    assert!(s.metrics_bind.is_none());
    assert!(!s.served_over_tls());
}

#[test]
fn store_urls_of_every_kind_parse() {
    let s3 = parse_store_url("X", "s3://evidence/prod/a").unwrap();
    assert_eq!(
        s3,
        StoreUrl::S3 {
            bucket: "evidence".into(),
            prefix: "prod/a".into()
        }
    );
    assert_eq!(parse_store_url("X", "memory://").unwrap(), StoreUrl::Memory);
    assert_eq!(
        parse_store_url("X", "file:///srv/objects").unwrap(),
        StoreUrl::Directory(PathBuf::from("/srv/objects"))
    );
    assert!(parse_store_url("X", "s3:///nobucket").is_err());
    assert!(parse_store_url("X", "ftp://host/x").is_err());
}

#[test]
fn bad_values_name_the_setting() {
    let e = load(&[("PORTAL_BIND", "localhost")]).unwrap_err();
    assert_eq!(e.setting, "PORTAL_BIND");
    let e = load(&[("PORTAL_DATABASE_URL", "mysql://x/y")]).unwrap_err();
    assert_eq!(e.setting, "PORTAL_DATABASE_URL");
    let e = load(&[("PORTAL_MAX_UPLOAD_BYTES", "lots")]).unwrap_err();
    assert_eq!(e.setting, "PORTAL_MAX_UPLOAD_BYTES");
    let e = load(&[("PORTAL_TRUSTED_PROXIES", "10.0.0.1, lb.example")]).unwrap_err();
    assert_eq!(e.setting, "PORTAL_TRUSTED_PROXIES");
    let e = load(&[("PORTAL_PUBLIC_URL", "ftp://x")]).unwrap_err();
    assert_eq!(e.setting, "PORTAL_PUBLIC_URL");
    for bad in ["0", "257", "-1", "many"] {
        let e = load(&[("PORTAL_WORKERS", bad)]).unwrap_err();
        assert_eq!(e.setting, "PORTAL_WORKERS", "{bad}");
    }
    assert_eq!(load(&[("PORTAL_WORKERS", " 16 ")]).unwrap().workers, 16);
    let e = load(&[("PORTAL_SMS_URL", "http://127.0.0.1:9/sms")]).unwrap_err();
    assert_eq!(e.setting, "PORTAL_SMS_SECRET", "a gateway without a secret");
    let e = load(&[("PORTAL_SMS_SECRET", "0123456789abcdef")]).unwrap_err();
    assert_eq!(e.setting, "PORTAL_SMS_SECRET", "a secret without a gateway");
    let e = load(&[
        ("PORTAL_SMS_URL", "ftp://x/"),
        ("PORTAL_SMS_SECRET", "0123456789abcdef"),
    ])
    .unwrap_err();
    assert_eq!(e.setting, "PORTAL_SMS_URL");
    let s = load(&[
        ("PORTAL_SMS_URL", "http://127.0.0.1:9/sms"),
        ("PORTAL_SMS_SECRET", "0123456789abcdef"),
    ])
    .unwrap();
    let shown = format!("{s:?}");
    assert!(
        s.sms.is_some() && !shown.contains("0123456789abcdef"),
        "{shown}"
    );
    let e = load(&[("PORTAL_SMTP_URL", "smtp://mail.example:587")]).unwrap_err();
    assert_eq!(e.setting, "PORTAL_MAIL_FROM", "a server without a sender");
    let e = load(&[
        ("PORTAL_SMTP_URL", "http://mail.example"),
        ("PORTAL_MAIL_FROM", "a@b.example"),
    ])
    .unwrap_err();
    assert_eq!(e.setting, "PORTAL_SMTP_URL");
    let s = load(&[
        (
            "PORTAL_SMTP_URL",
            "smtp://u:hunter22@mail.example:587?tls=required",
        ),
        ("PORTAL_MAIL_FROM", "证据公开 <noreply@example.gov.cn>"),
    ])
    .unwrap();
    let shown = format!("{s:?}");
    assert!(s.smtp.is_some() && !shown.contains("hunter22"), "{shown}");
    let default = load(&[]).unwrap().workers;
    assert!((1..=1024).contains(&default), "{default}");
    let e = load(&[
        ("PORTAL_BIND", "127.0.0.1:9000"),
        ("PORTAL_METRICS_BIND", "127.0.0.1:9000"),
    ])
    .unwrap_err();
    assert_eq!(e.setting, "PORTAL_METRICS_BIND");
}

#[test]
fn sizes_take_binary_units() {
    assert_eq!(parse_size("X", "1024").unwrap(), 1024);
    assert_eq!(parse_size("X", "2G").unwrap(), 2 << 30);
    assert_eq!(parse_size("X", "512MiB").unwrap(), 512 << 20);
    assert!(parse_size("X", "99999999999T").is_err());
}

#[test]
fn the_render_cache_is_bounded_like_uploads_and_zero_turns_it_off() {
    assert_eq!(
        load(&[]).unwrap().render_cache_bytes,
        DEFAULT_RENDER_CACHE_BYTES
    );
    let set = |v: &str| load(&[("PORTAL_RENDER_CACHE_BYTES", v)]);
    assert_eq!(set("64M").unwrap().render_cache_bytes, 64 << 20);
    assert_eq!(set("0").unwrap().render_cache_bytes, 0);
    assert_eq!(
        set("lots").unwrap_err().setting,
        "PORTAL_RENDER_CACHE_BYTES"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portal.toml");
    std::fs::write(&file, "render_cache_bytes = \"1G\"\n").unwrap();
    let s = Settings::from_sources(Some(&file), |_| None).unwrap();
    assert_eq!(s.render_cache_bytes, 1 << 30);
}

#[test]
fn passwords_never_show_in_database_urls() {
    let url = DatabaseUrl("postgres://portal:s3cret@db.example/portal".into());
    assert!(!format!("{url:?}").contains("s3cret"));
    assert!(url.redacted().contains("***"));
}

#[test]
fn https_public_url_means_tls() {
    let s = load(&[("PORTAL_PUBLIC_URL", "https://evidence.example.gov.cn/")]).unwrap();
    assert!(s.served_over_tls());
}

/// The file takes a size as the variable does (`"2G"`), and a plain byte count as before.
#[test]
fn max_upload_bytes_in_a_file_takes_the_same_sizes_as_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = |line: &str| {
        let path = dir.path().join("portal.toml");
        std::fs::write(&path, format!("{line}\n")).unwrap();
        Settings::from_sources(Some(&path), |_| None)
    };
    assert_eq!(
        from_file(r#"max_upload_bytes = "2G""#)
            .unwrap()
            .max_upload_bytes,
        2 << 30
    );
    assert_eq!(
        from_file(r#"max_upload_bytes = "512 MiB""#)
            .unwrap()
            .max_upload_bytes,
        512 << 20
    );
    assert_eq!(
        from_file("max_upload_bytes = 1048576")
            .unwrap()
            .max_upload_bytes,
        1 << 20
    );
    let wrong = from_file(r#"max_upload_bytes = "2 parsecs""#).unwrap_err();
    assert_eq!(wrong.setting, "max_upload_bytes (config file)");
    let zero = from_file(r#"max_upload_bytes = "0G""#).unwrap_err();
    assert_eq!(zero.reason, "must be greater than zero");
}

#[test]
fn contacts_are_sealed_with_sm4_gcm_unless_the_installation_chooses_aes() {
    let s = load(&[]).unwrap();
    assert_eq!(s.field_cipher, "sm4-gcm");
    assert!(s.field_key_file.is_none());
    let s = load(&[
        ("PORTAL_FIELD_CIPHER", "AES-256-GCM"),
        ("PORTAL_FIELD_KEY_FILE", "/etc/portal/field.key"),
    ])
    .unwrap();
    assert_eq!(s.field_cipher, "aes-256-gcm");
    assert_eq!(
        s.field_key_file,
        Some(PathBuf::from("/etc/portal/field.key"))
    );
    let wrong = load(&[("PORTAL_FIELD_CIPHER", "des")]).unwrap_err();
    assert_eq!(wrong.setting, "PORTAL_FIELD_CIPHER");
    assert_eq!(wrong.reason, "must be sm4-gcm or aes-256-gcm");
}
