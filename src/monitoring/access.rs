//! Who may see the monitoring and who hears from it: the dashboard's basic-auth login (a password the tool
//! generates once into `<state_dir>/secrets/dashboard-password`, passed to the dashboard role only as an
//! htpasswd `$apr1$` hash) and Alertmanager's receivers from `[monitor.alerts]` plus SMTP settings from
//! the environment. Everything here becomes role variables in `vars.json`; nothing reaches argv or a
//! child's environment.

use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The secret holding the dashboard's password (in `<state_dir>/secrets/`).
pub const DASHBOARD_SECRET: &str = "dashboard-password";
/// The dashboard's login name (role dashboard: `dashboard_auth_user`).
pub const DASHBOARD_USER: &str = "pipeline";

/// Environment variables with the SMTP server Alertmanager mails through (`email_to` in
/// `[monitor.alerts]`). The password is a secret: see [`crate::process::SECRET_ENV`].
pub const SMTP_SMARTHOST_ENV: &str = "PIPELINE_ALERT_SMTP_SMARTHOST";
pub const SMTP_FROM_ENV: &str = "PIPELINE_ALERT_SMTP_FROM";
pub const SMTP_USERNAME_ENV: &str = "PIPELINE_ALERT_SMTP_USERNAME";
pub const SMTP_PASSWORD_ENV: &str = "PIPELINE_ALERT_SMTP_PASSWORD";

/// `[monitor.alerts]` in pipeline.toml: where Alertmanager sends notifications.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Alertmanager's webhook receiver (JSON POSTs of firing and resolved alerts).
    pub webhook_url: Option<String>,
    /// E-mail recipient; the SMTP server comes from `PIPELINE_ALERT_SMTP_*`.
    pub email_to: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlertsError {
    #[error("[monitor.alerts] webhook_url = `{0}` is not an http:// or https:// URL; give the full address of the receiver, e.g. https://hooks.example.org/alerts")]
    BadWebhook(String),
    #[error("[monitor.alerts] email_to is set but {0} is not: Alertmanager needs the SMTP server; export {SMTP_SMARTHOST_ENV}=host:port and {SMTP_FROM_ENV}=sender@example.org (and {SMTP_USERNAME_ENV}/{SMTP_PASSWORD_ENV} if the server wants a login)")]
    MissingSmtp(&'static str),
    #[error("{SMTP_PASSWORD_ENV} is set without {SMTP_USERNAME_ENV}; set both for an SMTP login, or neither")]
    PasswordWithoutUser,
}

impl AlertsConfig {
    /// Role variables for Alertmanager's receivers; `env` reads an environment variable. Pure.
    pub fn role_vars(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Map<String, Value>, AlertsError> {
        let mut vars = Map::new();
        if let Some(url) = self.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
            if !ok {
                return Err(AlertsError::BadWebhook(url.to_string()));
            }
            vars.insert("prometheus_alertmanager_webhook_url".into(), url.into());
        }
        if let Some(to) = self.email_to.as_deref().filter(|t| !t.is_empty()) {
            let get = |name: &'static str| env(name).filter(|v| !v.is_empty());
            let host =
                get(SMTP_SMARTHOST_ENV).ok_or(AlertsError::MissingSmtp(SMTP_SMARTHOST_ENV))?;
            let from = get(SMTP_FROM_ENV).ok_or(AlertsError::MissingSmtp(SMTP_FROM_ENV))?;
            vars.insert("prometheus_alertmanager_email_to".into(), to.into());
            vars.insert("prometheus_alertmanager_smtp_smarthost".into(), host.into());
            vars.insert("prometheus_alertmanager_smtp_from".into(), from.into());
            match (get(SMTP_USERNAME_ENV), get(SMTP_PASSWORD_ENV)) {
                (Some(user), password) => {
                    vars.insert("prometheus_alertmanager_smtp_username".into(), user.into());
                    vars.insert(
                        "prometheus_alertmanager_smtp_password".into(),
                        password.unwrap_or_default().into(),
                    );
                }
                (None, Some(_)) => return Err(AlertsError::PasswordWithoutUser),
                (None, None) => {}
            }
        }
        Ok(vars)
    }

    /// One line for the user: where alerts go.
    pub fn describe(&self) -> String {
        let mut to = Vec::new();
        if let Some(url) = self.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            // Only scheme and host: a webhook's path often carries a token.
            let host = url
                .split("://")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .unwrap_or("");
            to.push(format!("webhook on {host}"));
        }
        if let Some(mail) = self.email_to.as_deref().filter(|t| !t.is_empty()) {
            to.push(format!("e-mail to {mail}"));
        }
        if to.is_empty() {
            "alerts show on the dashboard only (no receiver in [monitor.alerts])".into()
        } else {
            format!("alerts go to {}", to.join(" and "))
        }
    }
}

/// Whether `-e dashboard_auth=…` turned the login off (false, "false", "no", "off", 0).
pub fn auth_disabled(extra_vars: &Map<String, Value>) -> bool {
    match extra_vars.get("dashboard_auth") {
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        Some(Value::String(s)) => matches!(
            s.to_ascii_lowercase().as_str(),
            "false" | "no" | "off" | "0"
        ),
        _ => false,
    }
}

/// The htpasswd hash nginx checks the password against: Apache's MD5 crypt (`$apr1$`, which nginx
/// implements itself, independent of the host's libc). The salt is derived from the password, so the same
/// password always gives the same line and re-running monitor-setup changes nothing.
pub fn htpasswd_hash(password: &str) -> String {
    const SALT_CHARS: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let seed = Md5::digest(format!("pipeline-dashboard-salt:{password}").as_bytes());
    let salt: String = seed[..8]
        .iter()
        .map(|b| SALT_CHARS[*b as usize % 64] as char)
        .collect();
    apr1(password.as_bytes(), salt.as_bytes())
}

/// Apache's `$apr1$` MD5-crypt of `password` with `salt` (at most 8 characters).
pub fn apr1(password: &[u8], salt: &[u8]) -> String {
    const MAGIC: &[u8] = b"$apr1$";
    let salt = &salt[..salt.len().min(8)];
    let alt = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(MAGIC)
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut sum = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(sum);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(sum);
        } else {
            c.update(password);
        }
        sum = c.finalize();
    }
    const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::new();
    let mut to64 = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(
            (u32::from(sum[a]) << 16) | (u32::from(sum[b]) << 8) | u32::from(sum[c]),
            4,
        );
    }
    to64(u32::from(sum[11]), 2);
    format!(
        "{}{}${out}",
        String::from_utf8_lossy(MAGIC),
        String::from_utf8_lossy(salt)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apr1_matches_openssl_passwd_apr1() {
        // Expected values from `openssl passwd -apr1 -salt SALT PASSWORD`.
        assert_eq!(
            apr1(b"secret", b"abcdefgh"),
            "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/"
        );
        assert_eq!(apr1(b"", b"x"), "$apr1$x$tMwYqBfQwi3FYAr0aJc8M/");
        assert_eq!(
            apr1(b"a-very-long-password-longer-than-16", b"Q1w2E3r4"),
            "$apr1$Q1w2E3r4$yUKQaIF4403MTEVxH0iGX/"
        );
    }

    #[test]
    fn htpasswd_hash_is_stable_per_password_and_differs_between_passwords() {
        let a = htpasswd_hash("Abc123");
        assert_eq!(a, htpasswd_hash("Abc123"));
        assert_ne!(a, htpasswd_hash("Abc124"));
        assert!(a.starts_with("$apr1$") && !a.contains("Abc123"), "{a}");
    }

    #[test]
    fn dashboard_auth_false_in_any_spelling_turns_the_login_off() {
        for v in [json!(false), json!("false"), json!("no"), json!(0)] {
            let vars = Map::from_iter([("dashboard_auth".to_string(), v.clone())]);
            assert!(auth_disabled(&vars), "{v}");
        }
        assert!(!auth_disabled(&Map::new()));
        let on = Map::from_iter([("dashboard_auth".to_string(), json!(true))]);
        assert!(!auth_disabled(&on));
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn webhook_and_mail_receivers_become_role_vars_with_smtp_from_the_environment() {
        let cfg = AlertsConfig {
            webhook_url: Some("https://hooks.example.org/a/TOKEN".into()),
            email_to: Some("ops@example.org".into()),
        };
        let vars = cfg
            .role_vars(env(&[
                (SMTP_SMARTHOST_ENV, "smtp.example.org:587"),
                (SMTP_FROM_ENV, "alerts@example.org"),
                (SMTP_USERNAME_ENV, "alerts"),
                (SMTP_PASSWORD_ENV, "hunter2"),
            ]))
            .unwrap();
        assert_eq!(
            vars["prometheus_alertmanager_webhook_url"],
            "https://hooks.example.org/a/TOKEN"
        );
        assert_eq!(
            vars["prometheus_alertmanager_smtp_smarthost"],
            "smtp.example.org:587"
        );
        assert_eq!(vars["prometheus_alertmanager_smtp_password"], "hunter2");
        let said = cfg.describe();
        assert!(
            said.contains("hooks.example.org") && !said.contains("TOKEN"),
            "{said}"
        );
    }

    #[test]
    fn mail_receiver_without_smtp_server_is_refused_naming_the_variable() {
        let cfg = AlertsConfig {
            email_to: Some("ops@example.org".into()),
            ..AlertsConfig::default()
        };
        let err = cfg.role_vars(env(&[])).unwrap_err();
        assert_eq!(err, AlertsError::MissingSmtp(SMTP_SMARTHOST_ENV));
        assert!(err
            .to_string()
            .contains("export PIPELINE_ALERT_SMTP_SMARTHOST"));
    }

    #[test]
    fn webhook_that_is_not_a_url_is_refused() {
        let cfg = AlertsConfig {
            webhook_url: Some("hooks.example.org".into()),
            ..AlertsConfig::default()
        };
        assert!(matches!(
            cfg.role_vars(env(&[])),
            Err(AlertsError::BadWebhook(_))
        ));
        assert!(AlertsConfig::default()
            .role_vars(env(&[]))
            .unwrap()
            .is_empty());
    }
}
