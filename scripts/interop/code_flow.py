"""The authorization-code flow with PKCE, driven by authlib against the running binary.

authlib plays the app (a public client: authorization URL with an S256 challenge, the code
exchange, refresh, revocation); a small cookie-keeping HTTP client plays the user's browser
(sign in through the form, consent through the form, exactly the fields a browser posts).

Environment: TESSERA_URL, INTEROP_SPA_ID (a public client registered with INTEROP_REDIRECT_URI),
INTEROP_USERNAME, INTEROP_PASSWORD.
"""

import html
import os
import re
import sys
import urllib.parse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

URL = os.environ["TESSERA_URL"]
CLIENT_ID = os.environ["INTEROP_SPA_ID"]
REDIRECT_URI = os.environ["INTEROP_REDIRECT_URI"]
USERNAME = os.environ["INTEROP_USERNAME"]
PASSWORD = os.environ["INTEROP_PASSWORD"]

checks = 0


def check(ok, what):
    global checks
    if not ok:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


class Browser:
    """Keeps cookies by hand: `__Host-` cookies are `Secure`, which `requests` would only send
    over https, while a browser treats http://127.0.0.1 as a secure context."""

    def __init__(self):
        self.cookies = {}

    def _absorb(self, resp):
        for raw in resp.raw.headers.get_all("set-cookie") or []:
            pair, _, attrs = raw.partition(";")
            name, _, value = pair.partition("=")
            if "max-age=0" in attrs.lower():
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()

    def _headers(self, extra=None):
        headers = {"Accept": "text/html", "User-Agent": "Mozilla/5.0 (interop) Firefox/130.0"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra or {})
        return headers

    def get(self, url):
        resp = requests.get(url, headers=self._headers(), allow_redirects=False, timeout=10)
        self._absorb(resp)
        return resp

    def post_form(self, url, fields):
        # What a browser sends on a page's own form post (Referrer-Policy: same-origin).
        extra = {"Origin": URL, "Sec-Fetch-Site": "same-origin"}
        resp = requests.post(url, data=fields, headers=self._headers(extra), allow_redirects=False, timeout=10)
        self._absorb(resp)
        return resp


def hidden_fields(page):
    fields = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields.setdefault(html.unescape(name), html.unescape(value))
    return fields


def absolute(location):
    return urllib.parse.urljoin(URL + "/", location)


meta = requests.get(f"{URL}/.well-known/openid-configuration", timeout=10).json()
check(meta["authorization_endpoint"] == f"{URL}/oauth/authorize", "discovery names the authorization endpoint")
check(meta["code_challenge_methods_supported"] == ["S256"], "S256 is the only PKCE method")
check("authorization_code" in meta["grant_types_supported"], "the code grant is advertised")

app = OAuth2Session(
    CLIENT_ID,
    redirect_uri=REDIRECT_URI,
    scope="read",
    code_challenge_method="S256",
    token_endpoint_auth_method="none",
)
verifier = generate_token(64)
authorize_url, state = app.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
check("code_challenge=" in authorize_url and "code_challenge_method=S256" in authorize_url, "authlib sent a challenge")

browser = Browser()
# Not signed in: the endpoint sends the browser to sign in and come back.
resp = browser.get(authorize_url)
check(resp.status_code == 303, f"no session → 303, got {resp.status_code}")
login_url = absolute(resp.headers["location"])
check(urllib.parse.urlparse(login_url).path == "/login", f"sent to /login: {login_url}")
login_page = browser.get(login_url)
fields = hidden_fields(login_page.text)
fields.update({"username": USERNAME, "password": PASSWORD})
resp = browser.post_form(f"{URL}/login", fields)
check(resp.status_code == 303, f"sign-in → 303, got {resp.status_code}: {resp.text[:200]}")
back = absolute(resp.headers["location"])
check(urllib.parse.urlparse(back).path == "/oauth/authorize", f"back to the authorization endpoint: {back}")

# Consent, submitted as the page's form.
consent = browser.get(back)
check(consent.status_code == 200 and "Allow" in consent.text, f"consent page: {consent.status_code}")
fields = hidden_fields(consent.text)
check(fields.get("code_challenge_method") == "S256", "the challenge rides in the form")
fields["decision"] = "allow"
resp = browser.post_form(f"{URL}/oauth/authorize", fields)
check(resp.status_code == 303, f"consent → 303, got {resp.status_code}: {resp.text[:200]}")
callback = resp.headers["location"]
check(callback.startswith(REDIRECT_URI + "?"), f"redirected to the app: {callback}")
params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(callback).query))
check(params.get("state") == state, "state round-tripped")
check(params.get("iss") == URL, "iss in the response (RFC 9207)")

# The app: code exchange (authlib checks state and sends the verifier).
token = app.fetch_token(
    meta["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state
)
check(token["token_type"] == "Bearer" and token.get("refresh_token", "").startswith("trt_"), "tokens issued")
me = app.get(f"{URL}/v1/userinfo", timeout=10)
check(me.status_code == 200 and me.json()["username"] == USERNAME, f"userinfo with the app's token: {me.status_code}")

# The same code again: refused, and the tokens it issued die.
again = requests.post(
    meta["token_endpoint"],
    data={
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": CLIENT_ID,
    },
    timeout=10,
)
check(again.status_code == 400 and again.json()["error"] == "invalid_grant", "a replayed code is invalid_grant")
dead = requests.get(f"{URL}/v1/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
check(dead.status_code == 401, f"the replay revoked the first tokens: {dead.status_code}")

# A second authorization (the browser is signed in now: straight to consent), then refresh
# and revoke through authlib.
verifier = generate_token(64)
authorize_url, state = app.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
fields = hidden_fields(browser.get(authorize_url).text)
fields["decision"] = "allow"
callback = browser.post_form(f"{URL}/oauth/authorize", fields).headers["location"]
token = app.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state)
old_refresh = token["refresh_token"]
token = app.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
check(token["refresh_token"] != old_refresh, "refresh rotated")
check(app.get(f"{URL}/v1/userinfo", timeout=10).status_code == 200, "the refreshed token works")
revoked = app.revoke_token(meta["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token")
check(revoked.status_code == 200, f"revocation accepted: {revoked.status_code}")
gone = requests.post(
    meta["token_endpoint"],
    data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": CLIENT_ID},
    timeout=10,
)
check(gone.status_code == 400, f"the revoked refresh token is refused: {gone.status_code}")

# Deny: the app hears access_denied with its state.
verifier = generate_token(64)
authorize_url, state = app.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
fields = hidden_fields(browser.get(authorize_url).text)
fields["decision"] = "deny"
denied = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(browser.post_form(f"{URL}/oauth/authorize", fields).headers["location"]).query))
check(denied.get("error") == "access_denied" and denied.get("state") == state, "deny → access_denied with state")

print(f"code flow: {checks} checks passed")
