//! The admin pages' HTML: find users, disable one, their sessions, the signing keys and their
//! schedule, and the latest security events.

use maud::{Markup, html};
use tessera_store::{AuditRecord, User};

use super::views::{SessionRow, Viewer, layout, message, utc};
use crate::service::KeySummary;

/// What the admin page shows.
pub struct AdminPage<'a> {
    /// The search as typed.
    pub query: &'a str,
    /// Its results (`None`: no search yet).
    pub found: Option<&'a [User]>,
    /// The signing keys, each with its next scheduled change.
    pub keys: &'a [KeySummary],
    /// The automatic rotation period, in seconds.
    pub rotation_secs: i64,
    /// The latest events, newest first.
    pub events: &'a [AuditRecord],
    /// A notice after an action.
    pub notice: Option<&'a str>,
    /// The admin's own id (they cannot disable themselves).
    pub own_id: &'a str,
}

/// `/admin`.
pub fn admin(viewer: &Viewer<'_>, page: &AdminPage<'_>) -> Markup {
    let body = html! {
        h1 { "Administration" }
        (message(None, page.notice))
        section aria-labelledby="users-heading" {
            h2 #users-heading { "Users" }
            form method="get" action="/admin" role="search" {
                div.field {
                    label for="q" { "Username contains" }
                    input #q name="q" type="search" value=(page.query);
                }
                button type="submit" { "Find users" }
            }
            @if let Some(found) = page.found {
                @if found.is_empty() { p { "No user matches." } } @else {
                    table {
                        caption.visually-hidden { "Users found" }
                        thead { tr {
                            th scope="col" { "Username" } th scope="col" { "Role" }
                            th scope="col" { "Status" } th scope="col" { "Registered" }
                            th scope="col" { "Actions" }
                        } }
                        tbody { @for u in found { tr {
                            th scope="row" { (u.username) }
                            td { @if u.is_admin { "Administrator" } @else { "User" } }
                            td { @if u.disabled { "Disabled" } @else { "Active" } }
                            td { (utc(u.created_at)) }
                            td { div.actions {
                                a href={ "/admin/users/" (u.id) } { "Sessions" span.visually-hidden { " of " (u.username) } }
                                @if !u.disabled && u.id != page.own_id {
                                    form method="post" action={ "/admin/users/" (u.id) "/disable" } {
                                        input type="hidden" name="csrf_token" value=(viewer.csrf_token);
                                        button type="submit" { "Disable" span.visually-hidden { " " (u.username) } }
                                    }
                                }
                            } }
                        } } }
                    }
                }
            }
        }
        section aria-labelledby="keys-heading" {
            h2 #keys-heading { "Signing keys" }
            p { "Rotated every " (period(page.rotation_secs)) "." }
            table {
                caption.visually-hidden { "Signing keys" }
                thead { tr {
                    th scope="col" { "Key id" } th scope="col" { "Algorithm" }
                    th scope="col" { "Status" } th scope="col" { "Since" } th scope="col" { "Next change" }
                    th scope="col" { "Created" }
                } }
                tbody { @for k in page.keys { tr {
                    th scope="row" { code { (k.kid) } }
                    td { (k.alg) } td { (k.status) }
                    td { (utc(k.status_since)) }
                    td { @if let Some(at) = k.next_change_at { (utc(at)) } @else { "none" } }
                    td { (utc(k.created_at)) }
                } } }
            }
        }
        section aria-labelledby="events-heading" {
            h2 #events-heading { "Recent security events" }
            table {
                caption.visually-hidden { "Recent security events" }
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "User" }
                    th scope="col" { "IP address" } th scope="col" { "Detail" }
                } }
                tbody { @for r in page.events { tr {
                    td { (utc(r.event.at)) }
                    th scope="row" { (r.event.kind.as_str()) }
                    td { (r.event.user.as_deref().unwrap_or("")) }
                    td { (r.event.ip.as_deref().unwrap_or("")) }
                    td { (r.event.detail) }
                } } }
            }
        }
    };
    layout("Administration", Some(viewer), &body)
}

/// `/admin/users/{id}`: one user's sessions, each with its end button.
pub fn user_sessions(viewer: &Viewer<'_>, user: &User, rows: &[SessionRow<'_>]) -> Markup {
    let body = html! {
        h1 { "Sessions of " (user.username) }
        p { a href="/admin" { "Back to administration" } }
        @if user.disabled { p.notice role="status" { "This user is disabled." } }
        @if rows.is_empty() { p { "No live session." } } @else {
            table {
                caption.visually-hidden { "Sessions" }
                thead { tr {
                    th scope="col" { "Device" } th scope="col" { "Kind" } th scope="col" { "IP address" }
                    th scope="col" { "Signed in" } th scope="col" { "Last seen" } th scope="col" { "Action" }
                } }
                tbody { @for r in rows { tr {
                    th scope="row" { (r.device) }
                    td { @if r.app { "App authorization" } @else { "Browser session" } }
                    td { (r.ip.unwrap_or("unknown")) }
                    td { (utc(r.created)) } td { (utc(r.last_seen)) }
                    td {
                        form method="post" action={ "/admin/sessions/" (r.id) "/end" } {
                            input type="hidden" name="csrf_token" value=(viewer.csrf_token);
                            input type="hidden" name="user" value=(user.id);
                            button type="submit" { "End session" span.visually-hidden { " " (r.device) } }
                        }
                    }
                } } }
            }
        }
    };
    layout(
        &format!("Sessions of {}", user.username),
        Some(viewer),
        &body,
    )
}

/// A rotation period in the largest whole unit that fits: `30 days`, `12 hours`, `90 seconds`.
fn period(secs: i64) -> String {
    let (n, unit) = if secs >= 86_400 && secs % 86_400 == 0 {
        (secs / 86_400, "day")
    } else if secs >= 3_600 && secs % 3_600 == 0 {
        (secs / 3_600, "hour")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
