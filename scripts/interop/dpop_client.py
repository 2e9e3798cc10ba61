"""A DPoP client (RFC 9449) against a running `tessera serve`, written from the RFC alone.

The proofs are signed here by hand with `cryptography` (Ed25519 and P-256 keys, JWS compact
form built with the standard library), and the key thumbprint is computed here per RFC 7638,
so nothing of Tessera's own code is on the client side. The client obtains a DPoP-bound
access token and refresh token with the password grant, uses them, and then plays the thief
who copied both tokens but not the key: as a bearer token, with a proof by its own key, with
a replayed proof, with a proof for another URL — every use must fail. It also checks the CORS
answers for the origin run.sh allows and for one it does not.

Run by scripts/interop/run.sh (inputs: TESSERA_URL, INTEROP_USERNAME, INTEROP_PASSWORD,
INTEROP_CORS_ORIGIN). Exits 1 if any check failed.
"""

import base64
import hashlib
import json
import os
import time
import uuid

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from checks import check, finish

BASE = os.environ["TESSERA_URL"].rstrip("/")
USERNAME = os.environ["INTEROP_USERNAME"]
PASSWORD = os.environ["INTEROP_PASSWORD"]
CORS_ORIGIN = os.environ["INTEROP_CORS_ORIGIN"]
TIMEOUT = 10

state = {}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """A client key: its public JWK, RFC 7638 thumbprint, and a JWS signer."""

    def __init__(self, kind):
        self.kind = kind
        if kind == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            raw = self.private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
            required = ["crv", "kty", "x"]
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            numbers = self.private.public_key().public_numbers()
            self.jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big")),
            }
            required = ["crv", "kty", "x", "y"]
        canonical = json.dumps({k: self.jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
        self.thumbprint = b64url(hashlib.sha256(canonical.encode()).digest())

    def sign(self, data: bytes) -> bytes:
        if self.kind == "EdDSA":
            return self.private.sign(data)
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def proof(self, method, url, access_token=None, iat=None):
        header = {"typ": "dpop+jwt", "alg": self.kind, "jwk": self.jwk}
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(iat or time.time())}
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        signing_input = (
            b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        )
        return signing_input + "." + b64url(self.sign(signing_input.encode()))


def token_request(form, proof=None):
    headers = {"DPoP": proof} if proof else {}
    return requests.post(f"{BASE}/oauth/token", data=form, headers=headers, timeout=TIMEOUT)


def userinfo(scheme, token, proof=None):
    headers = {"Authorization": f"{scheme} {token}"}
    if proof:
        headers["DPoP"] = proof
    return requests.get(f"{BASE}/v1/userinfo", headers=headers, timeout=TIMEOUT)


def claims_of(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


owner = Key("ES256")
thief = Key("EdDSA")
USERINFO = f"{BASE}/v1/userinfo"


@check("discovery advertises dpop_signing_alg_values_supported")
def _():
    meta = requests.get(f"{BASE}/.well-known/openid-configuration", timeout=TIMEOUT).json()
    assert set(meta["dpop_signing_alg_values_supported"]) == {"EdDSA", "ES256"}, meta


@check("password grant with a proof: DPoP tokens bound to the client's RFC 7638 thumbprint")
def _():
    r = token_request(
        {"grant_type": "password", "username": USERNAME, "password": PASSWORD},
        owner.proof("POST", f"{BASE}/oauth/token"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP", body
    assert claims_of(body["access_token"])["cnf"] == {"jkt": owner.thumbprint}
    state.update(access=body["access_token"], refresh=body["refresh_token"])


@check("the owner uses the bound token with a fresh proof")
def _():
    r = userinfo("DPoP", state["access"], owner.proof("GET", USERINFO, state["access"]))
    assert r.status_code == 200, r.text
    assert r.json()["username"] == USERNAME


@check("stolen token as Bearer: 401 with a DPoP challenge")
def _():
    r = userinfo("Bearer", state["access"])
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"].startswith("DPoP "), r.headers


@check("stolen token with the thief's own proof: 401 invalid_dpop_proof")
def _():
    r = userinfo("DPoP", state["access"], thief.proof("GET", USERINFO, state["access"]))
    assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof", r.text


@check("a captured proof replayed: 401")
def _():
    proof = owner.proof("GET", USERINFO, state["access"])
    assert userinfo("DPoP", state["access"], proof).status_code == 200
    r = userinfo("DPoP", state["access"], proof)
    assert r.status_code == 401 and r.json()["error"] == "invalid_dpop_proof", r.text


@check("a proof for another URL, or two minutes old: 401")
def _():
    other = owner.proof("GET", f"{BASE}/v1/sessions", state["access"])
    stale = owner.proof("GET", USERINFO, state["access"], iat=time.time() - 120)
    for proof in (other, stale):
        r = userinfo("DPoP", state["access"], proof)
        assert r.status_code == 401, r.text


@check("stolen refresh token without the key: 400 invalid_dpop_proof")
def _():
    form = {"grant_type": "refresh_token", "refresh_token": state["refresh"]}
    for proof in (None, thief.proof("POST", f"{BASE}/oauth/token")):
        r = token_request(form, proof)
        assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text


@check("the owner refreshes with a proof by its key")
def _():
    form = {"grant_type": "refresh_token", "refresh_token": state["refresh"]}
    r = token_request(form, owner.proof("POST", f"{BASE}/oauth/token"))
    assert r.status_code == 200, r.text
    assert claims_of(r.json()["access_token"])["cnf"]["jkt"] == owner.thumbprint


@check("CORS: the allowed origin is echoed with credentials; a preflight answers 204")
def _():
    r = requests.options(
        f"{BASE}/oauth/token",
        headers={"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "dpop, content-type"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 204, r.status_code
    assert r.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "DPoP" in r.headers["Access-Control-Allow-Headers"]


@check("CORS: another origin gets no CORS header")
def _():
    r = requests.get(f"{BASE}/.well-known/jwks.json", headers={"Origin": "https://evil.example"},
                     timeout=TIMEOUT)
    assert "Access-Control-Allow-Origin" not in r.headers, r.headers
    assert "Origin" in r.headers.get("Vary", ""), r.headers


finish("DPoP/CORS checks")
