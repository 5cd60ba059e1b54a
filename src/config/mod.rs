//! Settings of one portal instance: defaults, an optional TOML file, then `PORTAL_*` variables.
//!
//! Every setting is validated here, once, so that a bad value stops the program at start with one
//! line naming the setting and why, instead of failing later in a request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

mod channels;
mod size;
pub use channels::{SmsSettings, SmtpSettings};
use channels::{sms_settings, smtp_settings};
use size::{FileSize, parse_size};

/// Uploads larger than this are refused while streaming unless configured otherwise (2 GiB).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The plain rasters of rendered views kept on disk, at most (512 MiB; `render::cache`).
pub const DEFAULT_RENDER_CACHE_BYTES: u64 = 512 * 1024 * 1024;

/// The validated settings the rest of the portal works with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    /// Where users reach the portal (links on printed notices; `Secure` cookies when https).
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub store_url: StoreUrl,
    /// Extra `object_store` options (e.g. `aws_endpoint`) on top of the `AWS_*` variables.
    pub store_options: Vec<(String, String)>,
    pub max_upload_bytes: u64,
    pub secret_key_file: PathBuf,
    /// Prometheus metrics are served here, and only here, when set.
    pub metrics_bind: Option<SocketAddr>,
    /// Load balancers whose `X-Forwarded-For` is believed. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A request body must bring at least [`SLOW_BODY_MIN_BYTES`] in every interval this long
    /// (or end), else the request is cut: a client trickling bytes cannot hold a connection.
    pub slow_body: std::time::Duration,
    /// The longest a database statement (or the wait for a pooled connection) may take.
    pub db_timeout: std::time::Duration,
    /// The longest the object store may take to start answering a call.
    pub store_timeout: std::time::Duration,
    /// How often this instance renews its heartbeat; one silent for three beats is taken for
    /// stopped, and the transfers it left open are closed as interrupted.
    pub heartbeat: std::time::Duration,
    /// How many HTTP workers (one thread each) serve requests; unset, one per available core.
    pub workers: usize,
    /// Query applications one address may file per hour (`PORTAL_APPLICATIONS_PER_HOUR`, 5).
    pub applications_per_hour: i32,
    /// The SMS gateway notifications go through, if any (`notifications::sms`).
    pub sms: Option<SmsSettings>,
    /// The SMTP server e-mail notifications go through, if any (`notifications::email`).
    pub smtp: Option<SmtpSettings>,
    /// The longest one send (an SMS or an e-mail) may take, connecting included.
    pub notify_timeout: std::time::Duration,
    /// How often this instance looks for notifications to send.
    pub notify_every: std::time::Duration,
    /// The CJK font the watermark of a rendered view is drawn with (`PORTAL_WATERMARK_FONT`):
    /// an OpenType file or collection. Without it nothing is rendered, and no view-only
    /// material is shown unmarked.
    pub watermark_font: PathBuf,
    /// The most bytes of plain rasters `{data_dir}/render-cache/` keeps, least recently used out
    /// first (`PORTAL_RENDER_CACHE_BYTES`, 512M; 0: nothing is cached).
    pub render_cache_bytes: u64,
    /// Downloads and bundles of images and PDFs for parties, agents, owners and insurers deliver
    /// burned-in copies naming the person, not originals (`PORTAL_WATERMARK_COPIES`, off).
    pub watermark_copies: bool,
    /// The `ffmpeg` that makes view-only videos' watermarked transcodes (`PORTAL_FFMPEG`; its
    /// `ffprobe` beside it). Not installed: videos are viewed at the brigade.
    pub ffmpeg: PathBuf,
    /// The cipher that seals telephone numbers and e-mail addresses at rest
    /// (`PORTAL_FIELD_CIPHER`): `sm4-gcm` (the default) or `aes-256-gcm`. Values sealed under
    /// either open under both.
    pub field_cipher: String,
    /// A file holding the key contact fields are sealed under, 64 hexadecimal characters
    /// (`PORTAL_FIELD_KEY_FILE`); unset, one derived from the server key.
    pub field_key_file: Option<PathBuf>,
    /// The SM2 key that signs beside the Ed25519 one (`PORTAL_SM2_KEY_FILE`, a PKCS #8 PEM that
    /// must exist); unset, one is generated on first start beside the secret key.
    pub sm2_key_file: Option<PathBuf>,
    /// The RFC 3161 time-stamping authority every bundle manifest is stamped by
    /// (`PORTAL_TSA_URL`); unset, bundles carry no `manifest.tsr`.
    pub tsa_url: Option<Url>,
}

/// What a request body must bring per `slow_body` interval: 32 KiB (about 1 KiB/s at the
/// default 30 s; a phone on a poor network sends far more).
pub const SLOW_BODY_MIN_BYTES: u64 = 32 * 1024;

/// A database URL whose password never reaches a log line or an error message.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// A URL given on the command line (`restore --to-database`), checked as the setting is.
    pub fn parse(name: &str, value: &str) -> Result<Self, ConfigError> {
        parse_database_url(name, value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    /// The URL with any password replaced, for messages.
    pub fn redacted(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Where evidence objects live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local directory (the embedded default, `data/objects`).
    Directory(PathBuf),
    /// An S3-compatible bucket and key prefix; credentials and endpoint from `AWS_*`.
    S3 { bucket: String, prefix: String },
    /// Process memory: for tests and trials only; nothing survives a restart.
    Memory,
}

/// One bad setting: which one, and why. Displayed as the single line the program exits with.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

impl ConfigError {
    fn new(setting: &str, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The raw settings as written in the TOML file; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    public_url: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    store_url: Option<String>,
    max_upload_bytes: Option<FileSize>,
    secret_key_file: Option<String>,
    metrics_bind: Option<String>,
    trusted_proxies: Option<String>,
    slow_body_seconds: Option<u64>,
    db_timeout_seconds: Option<u64>,
    store_timeout_seconds: Option<u64>,
    heartbeat_seconds: Option<u64>,
    workers: Option<u64>,
    applications_per_hour: Option<u64>,
    sms_url: Option<String>,
    sms_secret: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    notify_timeout_seconds: Option<u64>,
    notify_seconds: Option<u64>,
    watermark_font: Option<String>,
    render_cache_bytes: Option<FileSize>,
    watermark_copies: Option<String>,
    ffmpeg: Option<String>,
    field_cipher: Option<String>,
    field_key_file: Option<String>,
    sm2_key_file: Option<String>,
    tsa_url: Option<String>,
}

impl Settings {
    /// Reads the optional TOML file, then the process environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(config_file, |name| std::env::var(name).ok())
    }

    /// Reads the optional TOML file, then variables from `env` (tests pass their own).
    // Long because: one short stanza per setting (picked, checked, defaulted), each read alone;
    // the settings that go in pairs (e-mail, SMS) are checked by functions of their own.
    pub fn from_sources(
        config_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = match config_file {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        // The environment wins over the file; an empty variable counts as unset.
        let pick = |var: &str, from_file: Option<String>| -> Option<(String, String)> {
            match env(var).filter(|v| !v.trim().is_empty()) {
                Some(v) => Some((var.to_owned(), v)),
                None => from_file.map(|v| (file_key(var), v)),
            }
        };

        let bind = match pick("PORTAL_BIND", file.bind) {
            Some((name, v)) => parse_socket(&name, &v)?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let data_dir = match pick("PORTAL_DATA_DIR", file.data_dir) {
            Some((_, v)) => PathBuf::from(v),
            None => PathBuf::from("data"),
        };
        let public_url = match pick("PORTAL_PUBLIC_URL", file.public_url) {
            Some((name, v)) => parse_public_url(&name, &v)?,
            None => Url::parse(&format!("http://{bind}/"))
                .map_err(|e| ConfigError::new("PORTAL_BIND", e.to_string()))?,
        };
        let database_url = match pick("PORTAL_DATABASE_URL", file.database_url) {
            Some((name, v)) => parse_database_url(&name, &v)?,
            None => DatabaseUrl(sqlite_url(&data_dir.join("portal.db"))),
        };
        let store_url = match pick("PORTAL_STORE_URL", file.store_url) {
            Some((name, v)) => parse_store_url(&name, &v)?,
            None => StoreUrl::Directory(data_dir.join("objects")),
        };
        let size = |var: &str, from_file: Option<FileSize>, default: u64| match env(var)
            .filter(|v| !v.is_empty())
        {
            Some(v) => parse_size(var, &v),
            None => match from_file {
                Some(FileSize::Bytes(n)) => Ok(n),
                Some(FileSize::Text(v)) => parse_size(&file_key(var), &v),
                None => Ok(default),
            },
        };
        let max_upload_bytes = size(
            "PORTAL_MAX_UPLOAD_BYTES",
            file.max_upload_bytes,
            DEFAULT_MAX_UPLOAD_BYTES,
        )?;
        if max_upload_bytes == 0 {
            return Err(ConfigError::new(
                "PORTAL_MAX_UPLOAD_BYTES",
                "must be greater than zero",
            ));
        }
        let secret_key_file = match pick("PORTAL_SECRET_KEY_FILE", file.secret_key_file) {
            Some((_, v)) => PathBuf::from(v),
            None => data_dir.join("secret.key"),
        };
        let metrics_bind = match pick("PORTAL_METRICS_BIND", file.metrics_bind) {
            Some((name, v)) => Some(parse_socket(&name, &v)?),
            None => None,
        };
        if metrics_bind.is_some_and(|m| m == bind && m.port() != 0) {
            return Err(ConfigError::new(
                "PORTAL_METRICS_BIND",
                "must differ from PORTAL_BIND: metrics are never served on the public address",
            ));
        }
        let trusted_proxies = match pick("PORTAL_TRUSTED_PROXIES", file.trusted_proxies) {
            Some((name, v)) => v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse()
                        .map_err(|_| ConfigError::new(&name, format!("{p:?} is not an IP address")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let slow_body = match pick(
            "PORTAL_SLOW_BODY_SECONDS",
            file.slow_body_seconds.map(|s| s.to_string()),
        ) {
            Some((name, v)) => match v.trim().parse::<u64>() {
                Ok(s) if (1..=3600).contains(&s) => std::time::Duration::from_secs(s),
                _ => {
                    return Err(ConfigError::new(
                        &name,
                        "must be a number of seconds, 1 to 3600",
                    ));
                }
            },
            None => std::time::Duration::from_secs(30),
        };
        let seconds = |var: &str, from_file: Option<u64>, default: u64| match pick(
            var,
            from_file.map(|s| s.to_string()),
        ) {
            Some((name, v)) => match v.trim().parse::<u64>() {
                Ok(s) if (1..=600).contains(&s) => Ok(std::time::Duration::from_secs(s)),
                _ => Err(ConfigError::new(
                    &name,
                    "must be a number of seconds, 1 to 600",
                )),
            },
            None => Ok(std::time::Duration::from_secs(default)),
        };
        let db_timeout = seconds("PORTAL_DB_TIMEOUT_SECONDS", file.db_timeout_seconds, 5)?;
        let store_timeout = seconds(
            "PORTAL_STORE_TIMEOUT_SECONDS",
            file.store_timeout_seconds,
            10,
        )?;
        let heartbeat = seconds("PORTAL_HEARTBEAT_SECONDS", file.heartbeat_seconds, 30)?;
        let workers = match pick("PORTAL_WORKERS", file.workers.map(|n| n.to_string())) {
            Some((name, v)) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        &name,
                        "must be a number of workers, 1 to 256",
                    ));
                }
            },
            None => std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        };
        let applications_per_hour = match pick(
            "PORTAL_APPLICATIONS_PER_HOUR",
            file.applications_per_hour.map(|n| n.to_string()),
        ) {
            Some((name, v)) => match v.trim().parse::<i32>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::new(
                        &name,
                        "must be a number of applications, 1 to 10000",
                    ));
                }
            },
            None => 5,
        };
        let notify_timeout = seconds(
            "PORTAL_NOTIFY_TIMEOUT_SECONDS",
            file.notify_timeout_seconds,
            10,
        )?;
        let smtp = smtp_settings(
            pick("PORTAL_SMTP_URL", file.smtp_url),
            pick("PORTAL_MAIL_FROM", file.mail_from),
        )?;
        let sms = sms_settings(
            pick("PORTAL_SMS_URL", file.sms_url),
            pick("PORTAL_SMS_SECRET", file.sms_secret),
        )?;
        let notify_every = seconds("PORTAL_NOTIFY_SECONDS", file.notify_seconds, 5)?;
        Ok(Settings {
            bind,
            public_url,
            data_dir,
            database_url,
            store_url,
            store_options: Vec::new(),
            max_upload_bytes,
            secret_key_file,
            metrics_bind,
            trusted_proxies,
            slow_body,
            db_timeout,
            store_timeout,
            heartbeat,
            workers,
            applications_per_hour,
            sms,
            smtp,
            notify_timeout,
            notify_every,
            watermark_font: pick("PORTAL_WATERMARK_FONT", file.watermark_font)
                .map(|(_, v)| PathBuf::from(v.trim()))
                .unwrap_or_else(|| {
                    PathBuf::from("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
                }),
            render_cache_bytes: size(
                "PORTAL_RENDER_CACHE_BYTES",
                file.render_cache_bytes,
                DEFAULT_RENDER_CACHE_BYTES,
            )?,
            watermark_copies: match pick("PORTAL_WATERMARK_COPIES", file.watermark_copies) {
                None => false,
                Some((name, v)) => match v.trim().to_ascii_lowercase().as_str() {
                    "on" | "true" | "1" | "yes" => true,
                    "off" | "false" | "0" | "no" => false,
                    _ => return Err(ConfigError::new(&name, "must be on or off")),
                },
            },
            ffmpeg: pick("PORTAL_FFMPEG", file.ffmpeg)
                .map(|(_, v)| PathBuf::from(v.trim()))
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from("ffmpeg")),
            field_cipher: match pick("PORTAL_FIELD_CIPHER", file.field_cipher) {
                None => "sm4-gcm".to_owned(),
                Some((name, v)) => match v.trim().to_ascii_lowercase().as_str() {
                    c @ ("sm4-gcm" | "aes-256-gcm") => c.to_owned(),
                    _ => return Err(ConfigError::new(&name, "must be sm4-gcm or aes-256-gcm")),
                },
            },
            field_key_file: pick("PORTAL_FIELD_KEY_FILE", file.field_key_file)
                .map(|(_, v)| PathBuf::from(v.trim())),
            sm2_key_file: pick("PORTAL_SM2_KEY_FILE", file.sm2_key_file)
                .map(|(_, v)| PathBuf::from(v.trim())),
            tsa_url: match pick("PORTAL_TSA_URL", file.tsa_url) {
                Some((name, v)) => Some(parse_public_url(&name, &v)?),
                None => None,
            },
        })
    }

    /// Whether cookies must carry `Secure`.
    pub fn served_over_tls(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// The name a setting has in the TOML file, for messages about values that came from it.
fn file_key(var: &str) -> String {
    format!(
        "{} (config file)",
        var.trim_start_matches("PORTAL_").to_ascii_lowercase()
    )
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
    })?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().to_owned();
        ConfigError::new("--config", format!("{}: {msg}", path.display()))
    })
}

fn parse_socket(name: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        ConfigError::new(
            name,
            format!("{value:?} is not an address and port such as 127.0.0.1:8080"),
        )
    })
}

fn parse_public_url(name: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim())
        .map_err(|e| ConfigError::new(name, format!("{value:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            name,
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(url)
}

fn parse_database_url(name: &str, value: &str) -> Result<DatabaseUrl, ConfigError> {
    let value = value.trim();
    let url = Url::parse(value).map_err(|e| {
        ConfigError::new(
            name,
            format!("not a URL ({e}); expected sqlite:… or postgres://…"),
        )
    })?;
    match url.scheme() {
        "sqlite" => Ok(DatabaseUrl(value.to_owned())),
        "postgres" | "postgresql" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(ConfigError::new(name, "a postgres:// URL needs a host"));
            }
            Ok(DatabaseUrl(value.to_owned()))
        }
        other => Err(ConfigError::new(
            name,
            format!("unsupported scheme {other:?}; expected sqlite:… or postgres://…"),
        )),
    }
}

/// The SQLite URL of a file, creating it if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

pub(crate) fn parse_store_url(name: &str, value: &str) -> Result<StoreUrl, ConfigError> {
    let value = value.trim();
    if value == "memory://" || value == "memory:" {
        return Ok(StoreUrl::Memory);
    }
    if !value.contains("://") {
        // A bare path is a directory.
        return Ok(StoreUrl::Directory(PathBuf::from(value)));
    }
    let url = Url::parse(value)
        .map_err(|e| ConfigError::new(name, format!("{value:?} is not a URL: {e}")))?;
    match url.scheme() {
        "file" => url
            .to_file_path()
            .map(StoreUrl::Directory)
            .map_err(|()| ConfigError::new(name, "a file:// URL needs an absolute path")),
        "s3" => {
            let bucket = url.host_str().unwrap_or_default().to_owned();
            if bucket.is_empty() {
                return Err(ConfigError::new(
                    name,
                    "an s3:// URL needs a bucket: s3://bucket/prefix",
                ));
            }
            let prefix = url.path().trim_matches('/').to_owned();
            Ok(StoreUrl::S3 { bucket, prefix })
        }
        other => Err(ConfigError::new(
            name,
            format!(
                "unsupported scheme {other:?}; expected a directory, file://, s3:// or memory://"
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
