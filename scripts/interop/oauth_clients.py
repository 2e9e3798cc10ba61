"""Third-party OAuth2 and JWT clients against a running `tessera serve`.

authlib (the OAuth2 client many Python applications use) drives client_credentials with both
client authentication methods, RFC 7662 introspection and RFC 7009 revocation; PyJWT's
PyJWKClient verifies the access tokens through discovery and the JWKS, as a resource server
written in Python would. The point is interoperability: these libraries were written against
the RFCs, not against Tessera, so a response they cannot use is a defect even where our own
tests agree with our own reading.

Run by scripts/interop/run.sh, which starts the server and registers what this needs; the
inputs come from the environment (TESSERA_URL, INTEROP_CLIENT_ID/SECRET,
INTEROP_INTROSPECTOR_ID/SECRET, INTEROP_USERNAME/PASSWORD). Exits 1 if any check failed.
"""

import os
import sys

import jwt
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from checks import check, finish

BASE = os.environ["TESSERA_URL"].rstrip("/")
CLIENT_ID = os.environ["INTEROP_CLIENT_ID"]
CLIENT_SECRET = os.environ["INTEROP_CLIENT_SECRET"]
INTROSPECTOR_ID = os.environ["INTEROP_INTROSPECTOR_ID"]
INTROSPECTOR_SECRET = os.environ["INTEROP_INTROSPECTOR_SECRET"]
USERNAME = os.environ["INTEROP_USERNAME"]
PASSWORD = os.environ["INTEROP_PASSWORD"]
TIMEOUT = 10

state = {}


def session(auth_method, client_id=CLIENT_ID, secret=CLIENT_SECRET, scope=None):
    s = OAuth2Session(
        client_id,
        secret,
        scope=scope,
        token_endpoint_auth_method=auth_method,
        revocation_endpoint_auth_method=auth_method,
    )
    # Keep the raw token response so status codes can be asserted too: authlib only raises
    # OAuthError with the body's `error`.
    s.last_response = None

    def keep(resp):
        s.last_response = resp
        return resp

    s.register_compliance_hook("access_token_response", keep)
    return s


# Discovery: everything else takes its URLs from here, as a real client would.
@check("discovery document names the endpoints and issuer")
def _():
    resp = requests.get(f"{BASE}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert resp.status_code == 200, resp.status_code
    meta = resp.json()
    assert meta["issuer"] == BASE, meta["issuer"]
    for key in ("token_endpoint", "introspection_endpoint", "revocation_endpoint", "jwks_uri"):
        assert meta[key].startswith(BASE + "/"), (key, meta[key])
    for method in ("client_secret_basic", "client_secret_post"):
        assert method in meta["token_endpoint_auth_methods_supported"], method
        assert method in meta["introspection_endpoint_auth_methods_supported"], method
    assert "client_credentials" in meta["grant_types_supported"]
    state["meta"] = meta


META = state.get("meta")
if META is None:
    print("discovery failed; nothing else can run")
    sys.exit(1)
TOKEN_URL = META["token_endpoint"]
INTROSPECT_URL = META["introspection_endpoint"]
REVOKE_URL = META["revocation_endpoint"]


def assert_client_token(token, scope):
    assert token["token_type"].lower() == "bearer", token["token_type"]
    assert isinstance(token["expires_in"], int) and 0 < token["expires_in"] <= 3600, token
    assert token["scope"] == scope, token["scope"]
    assert "refresh_token" not in token, "client_credentials must not issue a refresh token"
    assert token["access_token"].count(".") == 2, "the access token is a JWS"


# --- authlib: client_credentials ------------------------------------------------------------


@check("authlib client_credentials, client_secret_basic, scope read")
def _():
    s = session("client_secret_basic", scope="read")
    token = s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    req = s.last_response.request
    assert req.headers.get("Authorization", "").startswith("Basic "), "authlib sent Basic"
    assert "client_secret" not in (req.body or ""), "and no secret in the body"
    assert_client_token(token, "read")
    state["basic_token"] = token["access_token"]


@check("authlib client_credentials, client_secret_post, scope read")
def _():
    s = session("client_secret_post", scope="read")
    token = s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    req = s.last_response.request
    assert "Authorization" not in req.headers, "authlib sent no Authorization header"
    assert "client_secret=" in req.body, "the secret went in the body"
    assert_client_token(token, "read")
    state["post_token"] = token["access_token"]


@check("authlib client_credentials without a scope gets the client's whole scope")
def _():
    s = session("client_secret_basic")
    token = s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert set(token["scope"].split()) == {"read", "write"}, token["scope"]


@check("authlib: a scope beyond the client's is invalid_scope (400)")
def _():
    s = session("client_secret_basic", scope="admin")
    try:
        s.fetch_token(TOKEN_URL, grant_type="client_credentials")
    except OAuthError as e:
        assert e.error == "invalid_scope", e.error
        assert s.last_response.status_code == 400, s.last_response.status_code
    else:
        raise AssertionError("a token was issued for scope admin")


for method in ("client_secret_basic", "client_secret_post"):

    @check(f"authlib: a wrong secret is 401 invalid_client ({method})")
    def _():
        s = session(method, secret=CLIENT_SECRET[:-4] + "AAAA", scope="read")
        try:
            s.fetch_token(TOKEN_URL, grant_type="client_credentials")
        except OAuthError as e:
            assert e.error == "invalid_client", e.error
            resp = s.last_response
            assert resp.status_code == 401, resp.status_code
            assert resp.headers.get("WWW-Authenticate", "").startswith("Basic"), resp.headers
        else:
            raise AssertionError("a token was issued for a wrong secret")


# --- authlib: introspection (RFC 7662) ------------------------------------------------------


def introspect(token, method="client_secret_basic"):
    s = session(method, client_id=INTROSPECTOR_ID, secret=INTROSPECTOR_SECRET)
    resp = s.introspect_token(INTROSPECT_URL, token=token)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
    return resp.json()


@check("authlib introspect_token (basic): a client token is active, sub = client_id")
def _():
    body = introspect(state["basic_token"])
    assert body["active"] is True, body
    assert body["sub"] == CLIENT_ID, body
    assert body.get("client_id") == CLIENT_ID, body
    assert body["scope"] == "read", body
    assert body["iss"] == BASE, body
    assert isinstance(body["exp"], int), body


@check("authlib introspect_token (post): the same answer with body authentication")
def _():
    body = introspect(state["post_token"], method="client_secret_post")
    assert body["active"] is True and body["sub"] == CLIENT_ID, body


@check("introspection without client authentication is refused (401)")
def _():
    resp = requests.post(INTROSPECT_URL, data={"token": state["basic_token"]}, timeout=TIMEOUT)
    assert resp.status_code == 401, resp.status_code
    assert resp.json()["error"] == "invalid_client", resp.text


@check("password grant for the user (plain requests, no client)")
def _():
    resp = requests.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": USERNAME, "password": PASSWORD},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, (resp.status_code, resp.text)
    token = resp.json()
    assert token["token_type"].lower() == "bearer" and token["refresh_token"].startswith("trt_")
    state["user_token"] = token["access_token"]


@check("authlib introspect_token: the user's token is active with its username")
def _():
    body = introspect(state["user_token"])
    assert body["active"] is True, body
    assert body["username"] == USERNAME, body


@check("after /oauth/revoke of the user's token, introspection says active false")
def _():
    resp = requests.post(REVOKE_URL, data={"token": state["user_token"]}, timeout=TIMEOUT)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    body = introspect(state["user_token"])
    assert body == {"active": False}, body


@check("authlib introspect_token: garbage is active false")
def _():
    for garbage in ("garbage", "a.b.c", "tss_not-a-token", "x" * 200):
        body = introspect(garbage)
        assert body == {"active": False}, (garbage, body)


# --- PyJWT: verification through discovery and the JWKS ------------------------------------


@check("PyJWT PyJWKClient verifies a client access token through discovery")
def _():
    token = state["basic_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    assert header["alg"] in ("EdDSA", "ES256"), header
    jwk_client = jwt.PyJWKClient(META["jwks_uri"], cache_keys=True)
    key = jwk_client.get_signing_key_from_jwt(token)
    assert key.key_id == header["kid"], (key.key_id, header)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA", "ES256"],
        audience=META["issuer"],
        issuer=META["issuer"],
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    assert claims["sub"] == CLIENT_ID, claims
    assert claims["client_id"] == CLIENT_ID, claims
    assert claims["scope"] == "read", claims
    state["jwk_client"] = jwk_client


@check("PyJWT: a token with one signature character flipped is refused")
def _():
    token = state["basic_token"]
    head, payload, sig = token.split(".")
    # A middle character: the last one carries unused bits a lenient decoder may ignore.
    i = len(sig) // 2
    flipped = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1 :]
    forged = ".".join((head, payload, flipped))
    key = state["jwk_client"].get_signing_key_from_jwt(forged)
    try:
        jwt.decode(forged, key.key, algorithms=["EdDSA", "ES256"], audience=BASE, issuer=BASE)
    except jwt.InvalidSignatureError:
        pass
    else:
        raise AssertionError("PyJWT accepted a forged signature")


@check("PyJWT: a token for another audience is refused")
def _():
    token = state["basic_token"]
    key = state["jwk_client"].get_signing_key_from_jwt(token)
    try:
        jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"], audience="https://other.example")
    except jwt.InvalidAudienceError:
        pass
    else:
        raise AssertionError("PyJWT accepted the wrong audience")


# --- authlib: the client revokes its own token ----------------------------------------------


@check("authlib revoke_token: the client revokes its own token; introspection says inactive")
def _():
    s = session("client_secret_basic", scope="read")
    token = s.fetch_token(TOKEN_URL, grant_type="client_credentials")["access_token"]
    assert introspect(token)["active"] is True
    resp = s.revoke_token(REVOKE_URL, token=token, token_type_hint="access_token")
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert introspect(token) == {"active": False}
    # The other tokens of the client are untouched.
    assert introspect(state["post_token"])["active"] is True


@check("another client cannot revoke this client's token")
def _():
    token = state["post_token"]
    other = session("client_secret_basic", client_id=INTROSPECTOR_ID, secret=INTROSPECTOR_SECRET)
    resp = other.revoke_token(REVOKE_URL, token=token, token_type_hint="access_token")
    # RFC 7009 §2.1/§2.2.1: the server checks the token was issued to the requesting client.
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert resp.json()["error"] == "unauthorized_client", resp.text
    assert introspect(token)["active"] is True, "revoked by a client that does not own it"


finish("interop")
