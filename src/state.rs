//! What every request handler shares: the settings, the database, the store, the keys and the
//! audit writer of this process. Below the domain and the web layer, which both take it.

use sea_orm::DatabaseConnection;

use crate::audit::Audit;
use crate::config::Settings;
use crate::keys::ServerKey;
use crate::store::Store;

/// What handlers share: one per process, cheap to clone.
pub struct AppState {
    pub settings: Settings,
    pub db: DatabaseConnection,
    pub store: Store,
    pub key: ServerKey,
    /// Signs bundle manifests (the digital stamp).
    pub manifest_key: std::sync::Arc<crate::signing::ManifestKey>,
    pub audit: Audit,
    /// The current time (tests move it; see `clock`).
    pub clock: crate::clock::Clock,
    /// This process, as its access events and heartbeat name it.
    pub instance: uuid::Uuid,
    /// Bundles being checked at once on the public /verify page (each takes disk for its copy
    /// and a core for its hashing): two; the rest are told to come back.
    pub bundle_checks: std::sync::Arc<tokio::sync::Semaphore>,
    /// The channels notifications go out by besides the inbox.
    pub channels: Channels,
    /// The passkey relying party (its id the host of `PORTAL_PUBLIC_URL`); `None` where that
    /// host cannot be one (an IP address): authenticator apps only.
    pub webauthn: Option<std::sync::Arc<webauthn_rs::Webauthn>>,
}

/// The passkey relying party of an installation: its id the public URL's host, its origin the
/// public URL. On `localhost` any port is accepted (development and tests bind port 0).
pub fn relying_party(settings: &crate::config::Settings) -> Option<webauthn_rs::Webauthn> {
    let url = &settings.public_url;
    // A relying party's id is a domain name: browsers refuse IP addresses.
    let Some(url::Host::Domain(host)) = url.host() else {
        return None;
    };
    let local = host == "localhost";
    let name = crate::i18n::Locale::Zh.t("site.name");
    webauthn_rs::WebauthnBuilder::new(host, url)
        .ok()?
        .rp_name(&name)
        .allow_any_port(local)
        .build()
        .ok()
}

/// The channels this installation sends notifications through besides the inbox. A delivery
/// is written only for these: an event while SMS was not set up is not texted days later
/// when it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channels {
    pub sms: bool,
    pub email: bool,
}

impl Channels {
    /// The inbox only (the demo, and installations without gateways).
    pub const INBOX_ONLY: Channels = Channels {
        sms: false,
        email: false,
    };

    pub fn of(settings: &crate::config::Settings) -> Channels {
        Channels {
            sms: settings.sms.is_some(),
            email: settings.smtp.is_some(),
        }
    }
}
