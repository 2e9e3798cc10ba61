//! A browser as the page tests need one: a cookie jar for the session, device and form
//! cookies, the headers a browser sends on its own pages' form posts (`Origin`, `Host`,
//! `Sec-Fetch-Site: same-origin`), and the hidden `csrf_token` read from the last page.

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};

use crate::common::*;

/// A browser on the pages.
#[derive(Clone, Debug, Default)]
pub struct PageClient {
    /// Cookies by name.
    pub jar: BTreeMap<String, String>,
    /// The `csrf_token` of the last page that had one.
    pub csrf: Option<String>,
    /// The `User-Agent` it sends.
    pub user_agent: Option<&'static str>,
    /// The socket address it connects from.
    pub ip: Option<&'static str>,
}

/// The value of the first hidden `csrf_token` field of a page.
pub fn hidden_csrf(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf_token" value=""#)?;
    let rest = &html[at + r#"name="csrf_token" value=""#.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl PageClient {
    /// A browser with the given `User-Agent`, connecting from `ip`.
    pub fn new(user_agent: &'static str, ip: &'static str) -> Self {
        Self {
            user_agent: Some(user_agent),
            ip: Some(ip),
            ..Self::default()
        }
    }

    /// The request with this browser's cookies, agent and address.
    pub fn dress(&self, mut req: Req) -> Req {
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        if let Some(ua) = self.user_agent {
            req = req.header(header::USER_AGENT, ua);
        }
        if let Some(ip) = self.ip {
            req = req.client_ip(ip);
        }
        req.header(header::HOST, HOST)
    }

    /// Takes the cookies a response sets (a `Max-Age=0` one is removed) and the page's
    /// `csrf_token`.
    pub fn absorb(&mut self, r: &Resp) {
        for v in r.headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(csrf) = hidden_csrf(&r.text()) {
            self.csrf = Some(csrf);
        }
    }

    /// `GET path`, as a browser navigates.
    pub async fn get(&mut self, s: &TestServer, path: &str) -> Resp {
        let req = self.dress(Req::get(path).header(header::ACCEPT, "text/html"));
        let r = s.send(req).await;
        self.absorb(&r);
        r
    }

    /// A form post from the page itself, with its `csrf_token` added.
    pub async fn post(&mut self, s: &TestServer, path: &str, fields: &[(&str, &str)]) -> Resp {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(s, path, &all, |r| {
            r.header(header::ORIGIN, ISSUER)
                .header("sec-fetch-site", "same-origin")
        })
        .await
    }

    /// A form post of exactly `fields`, with the extra headers `extra` adds.
    pub async fn post_raw(
        &mut self,
        s: &TestServer,
        path: &str,
        fields: &[(&str, &str)],
        extra: impl FnOnce(Req) -> Req,
    ) -> Resp {
        let req = extra(self.dress(Req::post(path).form(fields)));
        let r = s.send(req).await;
        self.absorb(&r);
        r
    }

    /// Opens `/login`, signs in (asserting the `303`) and follows the redirect, as a browser
    /// does — so the page's `csrf_token` is the session's.
    pub async fn sign_in(&mut self, s: &TestServer, username: &str, password: &str) -> Resp {
        self.get(s, "/login").await;
        let r = self
            .post(
                s,
                "/login",
                &[("username", username), ("password", password)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let next = r.header(header::LOCATION).unwrap();
        self.get(s, &next).await;
        r
    }

    /// The session cookie, if the browser holds one.
    pub fn session(&self) -> Option<&String> {
        self.jar.get(COOKIE)
    }
}
