//! The pages' HTML, as maud templates: Rust functions of typed views, escaped by default.
//!
//! Every page has the same frame ([`layout`]): a skip link, one `header` with the site name and
//! (signed in) the navigation and the sign-out button, one `main` holding the page's only `h1`,
//! and the one stylesheet. No script, no inline style, no third-party asset: the CSP allows
//! the stylesheet from this origin and nothing else.

use maud::{DOCTYPE, Markup, html};
use tessera_core::time::UnixTime;

use super::STYLESHEET_PATH;
use super::device::Device;

/// The signed-in user, as the frame shows it.
pub struct Viewer<'a> {
    /// The username.
    pub username: &'a str,
    /// Whether the admin page is theirs to see.
    pub is_admin: bool,
    /// The CSRF token of the sign-out form.
    pub csrf_token: &'a str,
}

/// The frame of every page.
pub fn layout(title: &str, viewer: Option<&Viewer<'_>>, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tessera" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    span.brand { "Tessera" }
                    @if let Some(v) = viewer {
                        nav aria-label="Account" {
                            ul {
                                li { a href="/account" { "Account" } }
                                li { a href="/account/sessions" { "Sessions" } }
                                @if v.is_admin { li { a href="/admin" { "Admin" } } }
                            }
                        }
                        form.signout method="post" action="/logout" {
                            input type="hidden" name="csrf_token" value=(v.csrf_token);
                            button type="submit" { "Sign out " span.visually-hidden { (v.username) } }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// A message above a form: an error (announced by screen readers at once) or a notice.
pub fn message(error: Option<&str>, notice: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
    }
}

/// One labelled input; the label is tied to it by `for`/`id`.
pub fn field(id: &str, label: &str, kind: &str, autocomplete: &str, value: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input #(id) name=(id) type=(kind) autocomplete=(autocomplete) value=(value) required;
        }
    }
}

/// The sign-in page.
pub fn login(
    csrf: &str,
    username: &str,
    return_to: Option<&str>,
    error: Option<&str>,
    notice: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        (message(error, notice))
        form method="post" action="/login" {
            input type="hidden" name="csrf_token" value=(csrf);
            @if let Some(r) = return_to { input type="hidden" name="return_to" value=(r); }
            (field("username", "Username", "text", "username", username))
            (field("password", "Password", "password", "current-password", ""))
            button type="submit" { "Sign in" }
        }
        p { "No account yet? " a href="/register" { "Create one" } "." }
    };
    layout("Sign in", None, &body)
}

/// The registration page.
pub fn register(csrf: &str, username: &str, error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Create an account" }
        (message(error, None))
        form method="post" action="/register" {
            input type="hidden" name="csrf_token" value=(csrf);
            (field("username", "Username", "text", "username", username))
            div.field {
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="new-password"
                    minlength="15" required aria-describedby="password-help";
                p #password-help .help { "At least 15 characters; a few unrelated words work well." }
            }
            button type="submit" { "Create account" }
        }
        p { "Already registered? " a href="/login" { "Sign in" } "." }
    };
    layout("Create an account", None, &body)
}

/// The account page: who you are, and the password change form.
pub fn account(
    viewer: &Viewer<'_>,
    user_id: &str,
    created: UnixTime,
    error: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Your account" }
        dl.facts {
            dt { "Username" } dd { (viewer.username) }
            dt { "User id" } dd { code { (user_id) } }
            dt { "Role" } dd { @if viewer.is_admin { "Administrator" } @else { "User" } }
            dt { "Registered" } dd { (utc(created)) }
        }
        section aria-labelledby="password-heading" {
            h2 #password-heading { "Change password" }
            p { "Changing it signs you out everywhere, this device included." }
            (message(error, None))
            form method="post" action="/account/password" {
                input type="hidden" name="csrf_token" value=(viewer.csrf_token);
                (field("current_password", "Current password", "password", "current-password", ""))
                div.field {
                    label for="new_password" { "New password" }
                    input #new_password name="new_password" type="password"
                        autocomplete="new-password" minlength="15" required
                        aria-describedby="new-password-help";
                    p #new-password-help .help { "At least 15 characters." }
                }
                button type="submit" { "Change password" }
            }
        }
    };
    layout("Your account", Some(viewer), &body)
}

/// One row of the sessions table.
pub struct SessionRow<'a> {
    /// Session id.
    pub id: &'a str,
    /// Browser session or app authorization.
    pub app: bool,
    /// Parsed from the user agent.
    pub device: Device,
    /// Client address at sign-in.
    pub ip: Option<&'a str>,
    /// When it started.
    pub created: UnixTime,
    /// Last use (to the minute).
    pub last_seen: UnixTime,
    /// The session of this request.
    pub current: bool,
}

/// The sessions page: every session, each with its sign-out button.
pub fn sessions(viewer: &Viewer<'_>, rows: &[SessionRow<'_>], notice: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Your sessions" }
        p { "Every browser signed in to your account and every app you have authorized." }
        (message(None, notice))
        table {
            caption.visually-hidden { "Sessions" }
            thead { tr {
                th scope="col" { "Device" } th scope="col" { "Kind" } th scope="col" { "IP address" }
                th scope="col" { "Signed in" } th scope="col" { "Last seen" } th scope="col" { "Action" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        th scope="row" {
                            (r.device)
                            @if r.current { " " strong.current { "(this device)" } }
                        }
                        td { @if r.app { "App authorization" } @else { "Browser session" } }
                        td { (r.ip.unwrap_or("unknown")) }
                        td { (utc(r.created)) }
                        td { (utc(r.last_seen)) }
                        td {
                            form method="post" action={ "/account/sessions/" (r.id) "/sign-out" } {
                                input type="hidden" name="csrf_token" value=(viewer.csrf_token);
                                button type="submit" {
                                    "Sign out" span.visually-hidden { " " (r.device) ", signed in " (utc(r.created)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/account/sessions/others" {
            input type="hidden" name="csrf_token" value=(viewer.csrf_token);
            button type="submit" { "Sign out other sessions" }
        }
    };
    layout("Your sessions", Some(viewer), &body)
}

/// An error page: what happened, and where to go.
pub fn error(status: u16, title: &str, detail: &str) -> Markup {
    let body = html! {
        h1 { (title) }
        p { (detail) }
        p.status { "HTTP " (status) }
        p { a href="/account" { "Go to your account" } " or " a href="/login" { "sign in" } "." }
    };
    layout(title, None, &body)
}

/// `2026-11-30 09:22 UTC`: the date of a Unix time in the proleptic Gregorian calendar.
pub fn utc(t: UnixTime) -> String {
    let days = t.0.div_euclid(86_400);
    let secs = t.0.rem_euclid(86_400);
    let (y, m, d) = civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Year, month, day of a count of days since 1970-01-01, by whole 400-year eras (146,097 days
/// each, a cycle of the Gregorian calendar), counting years from March so the leap day ends
/// the year.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_shown_in_utc() {
        for (t, shown) in [
            (0, "1970-01-01 00:00 UTC"),
            (951_782_400, "2000-02-29 00:00 UTC"),
            (1_709_164_799, "2024-02-28 23:59 UTC"),
            (1_798_588_800, "2026-12-30 00:00 UTC"),
            (-1, "1969-12-31 23:59 UTC"),
        ] {
            assert_eq!(utc(UnixTime(t)), shown, "{t}");
        }
    }

    #[test]
    fn text_is_escaped() {
        let page = error(400, "<script>", "a & b");
        let html = page.into_string();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(html.contains("a &amp; b"));
    }
}
