//! The words of SMS and e-mail (Chinese with an English line; the inbox words its messages from
//! the catalog in the reader's language instead), and how numbers and addresses are masked.

/// A case number as messages show it: its first two and last four characters, the rest masked
/// (`演示****001号`), enough for a person to know which of their cases, and nothing for others.
pub fn masked_case_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 6 {
        return chars
            .iter()
            .enumerate()
            .map(|(i, c)| if i + 2 >= chars.len() { *c } else { '*' })
            .collect();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// An address as staff and administrators see it in lists: `138****8000`, `z***@example.com`.
pub fn masked_address(channel: &str, address: &str) -> String {
    match channel {
        "email" => match address.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".into(),
        },
        _ => format!(
            "{}****{}",
            address.get(..3).unwrap_or(""),
            address.get(7..).unwrap_or("")
        ),
    }
}

/// An e-mail's subject: the signature and the masked case number, both languages.
pub fn message_subject(params: &serde_json::Value) -> String {
    let case = params["case"].as_str().unwrap_or("");
    format!("{SIGNATURE}案件{case}有新消息 (news on case {case})")
}

/// The sender's signature that opens every SMS (短信签名): registered with the provider, in
/// Chinese, as the rules for SMS senders in China require.
pub const SIGNATURE: &str = "【交通事故证据公开】";

/// The text of a message, in Chinese with an English line (SMS and e-mail go out in both; the
/// inbox shows the reader's language from the catalog).
pub fn message_text(event: &str, params: &serde_json::Value, portal: &str) -> String {
    let case = params["case"].as_str().unwrap_or("");
    let what = match event {
        "material.released" => {
            let n = params["count"].as_u64().unwrap_or(1);
            format!(
                "案件{case}有{n}份证据材料已公开。 ({n} evidence item(s) of case {case} released.)"
            )
        }
        "case.disclosing" => format!(
            "案件{case}已向当事人公开证据。 (The evidence of case {case} is open to the parties.)"
        ),
        "case.served" => match params["deadline"].as_str() {
            Some(deadline) => format!(
                "案件{case}的事故认定已送达，可于{deadline}前申请复核。 (The determination of case {case} was served; a review may be applied for until {deadline}.)"
            ),
            None => format!(
                "案件{case}的事故认定已送达。 (The determination of case {case} was served.)"
            ),
        },
        "case.closed" => format!("案件{case}已结案。 (Case {case} is closed.)"),
        "review.closing" => {
            let d = params["deadline"].as_str().unwrap_or("");
            format!(
                "案件{case}的复核申请期限明天（{d}）届满。 (The review period of case {case} ends tomorrow, {d}.)"
            )
        }
        "delegation.registered" => {
            let u = params["until"].as_str().unwrap_or("");
            format!(
                "案件{case}已登记代理人，代理期限至{u}。 (An agent is registered on case {case} until {u}.)"
            )
        }
        "delegation.ending" => {
            let u = params["until"].as_str().unwrap_or("");
            format!("案件{case}的代理将于{u}到期。 (The agency on case {case} ends on {u}.)")
        }
        "delegation.revoked" => {
            format!("案件{case}的代理已撤销。 (The agency on case {case} was revoked.)")
        }
        "code.expiring" => {
            let u = params["until"].as_str().unwrap_or("");
            format!(
                "您的访问码将于{u}过期，请尽快激活账户；过期后请联系办案大队重新发放。 (Your access code expires at {u}: activate your account soon, or ask the brigade for a new one.)"
            )
        }
        "account.reset" => "您的账户已被重置，原密码已失效，所有登录已退出。如非您本人申请，请立即联系办案大队。 (Your account was reset: the old password no longer works and every sign-in was ended. If you did not ask for this, call the brigade at once.)".to_owned(),
        "second_factor.reset" => "您的二次验证已被管理员重置，下次登录时须重新添加验证器应用。如非您本人申请，请立即联系管理员。 (An administrator reset your second factor: add an authenticator app again at your next sign-in. If you did not ask for this, call the administrator at once.)".to_owned(),
        "review.filed" => {
            let r = params["receipt"].as_str().unwrap_or("");
            format!(
                "案件{case}的复核申请已提交，受理编号{r}。 (The review application on case {case} was filed, receipt {r}.)"
            )
        }
        "review.forwarded" => format!(
            "案件{case}的复核申请已转交复核机关。 (The review application on case {case} was forwarded to the reviewing authority.)"
        ),
        "review.accepted" => format!(
            "案件{case}的复核申请已被复核机关受理。 (The review application on case {case} was accepted by the reviewing authority.)"
        ),
        "review.refused" => format!(
            "案件{case}的复核申请未被受理，原因见复核申请页面。 (The review application on case {case} was not accepted; the reason is on the application's page.)"
        ),
        "review.concluded" => format!(
            "案件{case}的复核已作出结论。 (The review of case {case} is concluded.)"
        ),
        "access.approved" => {
            let r = params["receipt"].as_str().unwrap_or("");
            let u = params["until"].as_str().unwrap_or("");
            format!(
                "您的查询申请{r}（案件{case}）已批准，查询期限至{u}，请通过申请时获得的链接领取查询凭证。 (Your application {r} to query case {case} was approved until {u}; collect the query voucher through the link you were given when applying.)"
            )
        }
        "access.refused" => {
            let r = params["receipt"].as_str().unwrap_or("");
            format!(
                "您的查询申请{r}（案件{case}）未获批准，原因请通过申请时获得的链接查看。 (Your application {r} to query case {case} was refused; the reason is on its page, through the link you were given.)"
            )
        }
        _ => format!("案件{case}有新进展。 (Case {case} has news.)"),
    };
    format!("{SIGNATURE}{what} {portal}")
}
