//! The route table: every path of the portal, the methods it answers and its handlers.

use actix_web::{Resource, web};

use super::*;

/// One path of the portal: the methods it answers and how its resource is built.
pub struct RouteSpec {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub(super) build: fn(Resource) -> Resource,
}

/// Every route of the portal, in matching order. `configure` registers exactly these, and the
/// authorisation matrix test reads this list, so a route added without a matrix entry fails it.
///
/// actix-web tries the routes in this order, testing each pattern with parameters as a regular
/// expression: the bytes of evidence, the busiest route, come first (no other pattern has its
/// five segments), so its requests do not pay for the regular expressions of the routes above it
/// (~5 % of a 20 KiB download's CPU when it came twenty-second).
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        path: "/cases/{id}/materials/{material_id}/{mode}",
        methods: &["GET"],
        build: |r| r.route(get().to(content::material_content_get)),
    },
    RouteSpec {
        path: "/",
        methods: &["GET"],
        build: |r| r.route(get().to(public::view_landing_get)),
    },
    RouteSpec {
        path: "/healthz",
        methods: &["GET"],
        build: |r| r.route(get().to(health::healthz)),
    },
    RouteSpec {
        path: "/readyz",
        methods: &["GET"],
        build: |r| r.route(get().to(health::readyz)),
    },
    RouteSpec {
        path: "/static/{hash}/{name}",
        methods: &["GET"],
        build: |r| r.route(get().to(static_files::asset)),
    },
    RouteSpec {
        path: "/verify",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(verify::view_verify_get))
                .route(web::post().to(verify::view_verify_post))
        },
    },
    RouteSpec {
        path: "/.well-known/evidence-portal/manifest-key.pem",
        methods: &["GET"],
        build: |r| r.route(get().to(bundles::manifest_key_pem)),
    },
    RouteSpec {
        path: "/.well-known/evidence-portal/manifest-key-sm2.pem",
        methods: &["GET"],
        build: |r| r.route(get().to(bundles::manifest_key_sm2_pem)),
    },
    RouteSpec {
        path: "/.well-known/jwks.json",
        methods: &["GET"],
        build: |r| r.route(get().to(bundles::jwks)),
    },
    RouteSpec {
        path: "/language",
        methods: &["GET"],
        build: |r| r.route(get().to(public::language_get)),
    },
    RouteSpec {
        path: "/care",
        methods: &["GET"],
        build: |r| r.route(get().to(public::care_get)),
    },
    RouteSpec {
        path: "/apply",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(apply::view_apply_get))
                .route(web::post().to(apply::apply_post))
        },
    },
    RouteSpec {
        path: "/apply/mine",
        methods: &["GET"],
        build: |r| r.route(get().to(apply::view_apply_mine_get)),
    },
    RouteSpec {
        path: "/apply/find",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(apply::view_apply_find_get))
                .route(web::post().to(apply::apply_find_post))
        },
    },
    RouteSpec {
        path: "/apply/find/code",
        methods: &["POST"],
        build: |r| r.route(web::post().to(apply::apply_find_code_post)),
    },
    RouteSpec {
        path: "/apply/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(apply::view_apply_status_get)),
    },
    RouteSpec {
        path: "/apply/{id}/voucher",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(apply::view_apply_voucher_get))
                .route(web::post().to(apply::apply_voucher_post))
        },
    },
    RouteSpec {
        path: "/apply/{id}/claim",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(apply::view_claim_get))
                .route(web::post().to(apply::claim_post))
        },
    },
    RouteSpec {
        path: "/login",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(auth::view_login_get))
                .route(web::post().to(auth::view_login_post))
        },
    },
    RouteSpec {
        path: "/login/second-factor",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(second_factor::view_challenge_get))
                .route(web::post().to(second_factor::challenge_post))
        },
    },
    RouteSpec {
        path: "/account/second-factor",
        methods: &["GET"],
        build: |r| r.route(get().to(second_factor::view_manage_get)),
    },
    RouteSpec {
        path: "/account/second-factor/totp",
        methods: &["POST"],
        build: |r| r.route(web::post().to(second_factor::totp_begin_post)),
    },
    RouteSpec {
        path: "/account/second-factor/totp/confirm",
        methods: &["POST"],
        build: |r| r.route(web::post().to(second_factor::totp_confirm_post)),
    },
    RouteSpec {
        path: "/login/second-factor/passkey/begin",
        methods: &["POST"],
        build: |r| r.route(web::post().to(passkeys::sign_in_begin_post)),
    },
    RouteSpec {
        path: "/login/second-factor/passkey/finish",
        methods: &["POST"],
        build: |r| r.route(web::post().to(passkeys::sign_in_finish_post)),
    },
    RouteSpec {
        path: "/account/second-factor/passkey/begin",
        methods: &["POST"],
        build: |r| r.route(web::post().to(passkeys::register_begin_post)),
    },
    RouteSpec {
        path: "/account/second-factor/passkey/finish",
        methods: &["POST"],
        build: |r| r.route(web::post().to(passkeys::register_finish_post)),
    },
    RouteSpec {
        path: "/account/second-factor/{id}/remove",
        methods: &["POST"],
        build: |r| r.route(web::post().to(second_factor::remove_post)),
    },
    RouteSpec {
        path: "/session/extend",
        methods: &["POST"],
        build: |r| r.route(web::post().to(public::session_extend_post)),
    },
    RouteSpec {
        path: "/logout",
        methods: &["POST"],
        build: |r| r.route(web::post().to(auth::logout_post)),
    },
    RouteSpec {
        path: "/activate",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(auth::view_activate_get))
                .route(web::post().to(auth::view_activate_post))
        },
    },
    RouteSpec {
        path: "/account",
        methods: &["GET"],
        build: |r| r.route(get().to(account::view_account_get)),
    },
    RouteSpec {
        path: "/account/password",
        methods: &["POST"],
        build: |r| r.route(web::post().to(account::password_post)),
    },
    RouteSpec {
        path: "/account/tokens",
        methods: &["POST"],
        build: |r| r.route(web::post().to(account::token_create_post)),
    },
    RouteSpec {
        path: "/account/tokens/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(account::token_created_get)),
    },
    RouteSpec {
        path: "/account/tokens/{id}/revoke",
        methods: &["POST"],
        build: |r| r.route(web::post().to(account::token_revoke_post)),
    },
    RouteSpec {
        path: "/account/notifications",
        methods: &["POST"],
        build: |r| r.route(web::post().to(account::notifications_post)),
    },
    RouteSpec {
        path: "/inbox",
        methods: &["GET"],
        build: |r| r.route(get().to(inbox::view_inbox_get)),
    },
    RouteSpec {
        path: "/inbox/read",
        methods: &["POST"],
        build: |r| r.route(web::post().to(inbox::inbox_read_post)),
    },
    RouteSpec {
        path: "/api/whoami",
        methods: &["GET"],
        build: |r| r.route(get().to(api::whoami)),
    },
    RouteSpec {
        path: "/cases",
        methods: &["GET"],
        build: |r| r.route(get().to(cases::view_my_cases_get)),
    },
    RouteSpec {
        path: "/cases/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(cases::view_case_get)),
    },
    RouteSpec {
        path: "/cases/{id}/custody/{material_id}",
        methods: &["GET"],
        build: |r| r.route(get().to(custody::party_custody_get)),
    },
    RouteSpec {
        path: "/cases/{id}/bundle.zip",
        methods: &["GET"],
        build: |r| r.route(get().to(bundles::bundle_get)),
    },
    RouteSpec {
        path: "/cases/{id}/review",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(review::view_review_get))
                .route(web::post().to(review::review_file_post))
        },
    },
    RouteSpec {
        path: "/cases/{id}/materials/{material_id}",
        methods: &["GET"],
        build: |r| r.route(get().to(cases::view_material_get)),
    },
    RouteSpec {
        path: "/staff",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_queue_get)),
    },
    RouteSpec {
        path: "/staff/trace",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(trace::view_trace_get))
                .route(web::post().to(trace::trace_post))
        },
    },
    RouteSpec {
        path: "/staff/audit",
        methods: &["GET"],
        build: |r| r.route(get().to(audit::view_audit_get)),
    },
    RouteSpec {
        path: "/staff/audit.csv",
        methods: &["GET"],
        build: |r| r.route(get().to(audit::audit_csv_get)),
    },
    RouteSpec {
        path: "/admin/audit/verify",
        methods: &["POST"],
        build: |r| r.route(web::post().to(audit::audit_verify_post)),
    },
    RouteSpec {
        path: "/staff/cases",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(staff::view_cases_get))
                .route(web::post().to(staff::case_create_post))
        },
    },
    RouteSpec {
        path: "/staff/cases/new",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_case_new_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_case_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/edit",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(staff::view_case_edit_get))
                .route(web::post().to(staff::case_edit_post))
        },
    },
    RouteSpec {
        path: "/staff/cases/{id}/upload",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_upload_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/status",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::case_status_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/milestones",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::milestone_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/parties",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::party_register_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/parties/{party_id}/notice",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::party_notice_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/parties/{party_id}/code",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::party_code_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/parties/{party_id}/reset",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::party_reset_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/delegations",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::delegation_grant_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/delegations/{delegation_id}/notice",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::delegation_notice_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/delegations/{delegation_id}/revoke",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::delegation_revoke_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/vehicles",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::vehicle_add_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/vehicles/{vehicle_id}/remove",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::vehicle_remove_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/materials",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::material_upload_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/release",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::materials_release_post)),
    },
    // Before the decisions' pattern, which would take `redact` as a decision.
    RouteSpec {
        path: "/staff/cases/{id}/materials/{material_id}/redact",
        methods: &["GET", "POST"],
        build: |r| {
            r.route(get().to(staff::view_redact_get))
                .route(web::post().to(staff::redact_post))
        },
    },
    // Before the decisions' pattern too (issue 36).
    RouteSpec {
        path: "/staff/cases/{id}/materials/{material_id}/custody",
        methods: &["GET"],
        build: |r| r.route(get().to(custody::staff_custody_get)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/materials/{material_id}/proves",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::material_proves_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/redactions/{redaction_id}/review",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::redaction_review_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/materials/{material_id}/{decision}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::material_decide_post)),
    },
    RouteSpec {
        path: "/staff/cases/{id}/reviews/{application_id}/{step}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::review_step_post)),
    },
    RouteSpec {
        path: "/staff/applications",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_ledger_get)),
    },
    RouteSpec {
        path: "/staff/applications.csv",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::ledger_csv_get)),
    },
    RouteSpec {
        path: "/staff/applications/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::view_access_application_get)),
    },
    RouteSpec {
        path: "/staff/applications/{id}/proof",
        methods: &["GET"],
        build: |r| r.route(get().to(staff::access_proof_get)),
    },
    RouteSpec {
        path: "/staff/applications/{id}/{decision}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(staff::access_decide_post)),
    },
    RouteSpec {
        path: "/admin",
        methods: &["GET"],
        build: |r| r.route(get().to(admin::view_admin_get)),
    },
    RouteSpec {
        path: "/admin/departments",
        methods: &["POST"],
        build: |r| r.route(web::post().to(admin::department_create_post)),
    },
    RouteSpec {
        path: "/admin/departments/{id}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(admin::department_contact_post)),
    },
    RouteSpec {
        path: "/admin/accounts",
        methods: &["POST"],
        build: |r| r.route(web::post().to(admin::account_create_post)),
    },
    RouteSpec {
        path: "/admin/accounts/{id}",
        methods: &["GET"],
        build: |r| r.route(get().to(admin::account_code_get)),
    },
    RouteSpec {
        path: "/admin/accounts/{id}/{action}",
        methods: &["POST"],
        build: |r| r.route(web::post().to(admin::account_action_post)),
    },
];
