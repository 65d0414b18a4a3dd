"""JWT verification at the proxy's edge (RFC 7515/7519/8725) over real HTTP against a real
Postgres: a proxy whose keys come from a JWKS file of two RSA keys (a rotation: old and new)
accepts tokens of both kids and refuses an unknown kid, a crit header, duplicate claims, a NUL in
the subject, a token without exp and an oversized token, each with 401 and the reason in
WWW-Authenticate. The malformed tokens are signed by hand with the real key, so each is refused
for what it is, not for its signature."""
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from test_api import ADMIN, SECRET, call, start_proxy, stop_proxy
from zg import run_cli


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rs256(key, header, payload):
    """A token signed with an RSA key over header and payload given as raw JSON text (so that
    duplicate members and escapes stay exactly as written)."""
    signing_input = b64(header.encode()) + "." + b64(payload.encode())
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64(sig)


def jwk(key, kid, **extra):
    d = json.loads((RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm)
                   .to_jwk(key.public_key()))
    d.update(kid=kid, **extra)
    return d


@pytest.fixture(scope="module")
def keys():
    return {"old": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "new": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.fixture(scope="module")
def jp(cluster, keys, tmp_path_factory):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(keys["old"], "2024-old", alg="RS256", use="sig"),
                                         jwk(keys["new"], "2025-new", use="sig")]}))
    p = start_proxy(cluster, "jwks", auth={"jwt": {"algorithms": ["RS256"], "jwks_file": str(path)}})
    yield p
    stop_proxy(p)


def claims(sub="alice", ttl=600, **more):
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + ttl, **more}


def refused(port, tok, reason):
    """Asserts tok is refused with 401, code invalid_token and reason in the description (where
    a quote is written ') and in the body's message (where it stays ")."""
    status, h, body = call(port, "GET", "/rpc/whoami", tok)
    assert status == 401, (reason, status, body)
    assert body["code"] == "invalid_token", body
    assert h["www-authenticate"].startswith('Bearer error="invalid_token", error_description="'), h
    assert reason in h["www-authenticate"], (reason, h["www-authenticate"])
    assert reason.replace("'", '"') in body["message"], (reason, body)
    return h["www-authenticate"]


def test_both_kids_of_the_jwks_are_accepted(jp, keys):
    for kid, sub in (("2024-old", "alice"), ("2025-new", "bob")):
        tok = pyjwt.encode(claims(sub), keys["old" if kid == "2024-old" else "new"], algorithm="RS256",
                           headers={"kid": kid})
        status, _, body = call(jp.port, "GET", "/rpc/whoami", tok)
        assert status == 200, (kid, body)
        assert body["user"] == sub and body["claims"]["sub"] == sub
        status, _, body = call(jp.port, "GET", "/v1/me/context", tok)
        assert status == 200 and body["user_id"] == sub
    # Without a kid, every RS256 key of the set is tried.
    assert call(jp.port, "GET", "/rpc/whoami", pyjwt.encode(claims("bob"), keys["new"], algorithm="RS256"))[0] == 200


def test_a_kid_names_its_key_only(jp, keys):
    # The new key's signature under the old key's kid.
    tok = pyjwt.encode(claims(), keys["new"], algorithm="RS256", headers={"kid": "2024-old"})
    refused(jp.port, tok, "signature verification failed")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(jp.port, pyjwt.encode(claims(), other, algorithm="RS256", headers={"kid": "2023-gone"}),
            "unknown key id '2023-gone'")
    refused(jp.port, pyjwt.encode(claims(), other, algorithm="RS256"), "signature verification failed")


def test_an_unknown_kid_is_sanitized_in_the_answer(jp, keys):
    tok = rs256(keys["old"], json.dumps({"alg": "RS256", "kid": "k\r\nX-Injected: 1\"" + "z" * 80}),
                json.dumps(claims()))
    h = refused(jp.port, tok, "unknown key id")
    assert "X-Injected: 1?" in h and "\r" not in h and "zzz..." in h and "z" * 40 not in h


def test_crit_is_refused(jp, keys):
    payload = json.dumps(claims())
    for header in ('{"alg":"RS256","kid":"2024-old","b64":false,"crit":["b64"]}',
                   '{"alg":"RS256","kid":"2024-old","crit":[]}'):
        refused(jp.port, rs256(keys["old"], header, payload), "crit header refused")


def test_duplicate_claims_are_refused(jp, keys):
    now = int(time.time())
    header = '{"alg":"RS256","kid":"2025-new"}'
    # RapidJSON would read the first role, Postgres jsonb keeps the last.
    dup = '{"sub":"alice","exp":%d,"role":"user","role":"service"}' % (now + 600)
    refused(jp.port, rs256(keys["new"], header, dup), "duplicate member name in the token payload")
    nested = '{"sub":"alice","exp":%d,"app":{"org":1,"org":2}}' % (now + 600)
    refused(jp.port, rs256(keys["new"], header, nested), "duplicate member name in the token payload")
    refused(jp.port, rs256(keys["new"], '{"alg":"RS256","alg":"RS256"}', json.dumps(claims())),
            "duplicate member name in the token header")
    # The same payload without the duplicate is fine: the refusal is for the duplicate.
    # (On /v1: on /rpc a role claim names a database role since issue 23, and "service" is none.)
    ok = '{"sub":"alice","exp":%d,"role":"service"}' % (now + 600)
    assert call(jp.port, "GET", "/v1/users/bob/context", rs256(keys["new"], header, ok))[0] == 200


def test_nul_in_the_subject_is_refused(jp, keys):
    now = int(time.time())
    header = '{"alg":"RS256","kid":"2024-old"}'
    # libpq would cut "bob\0alice" to "bob": the database would see another user than the cache key.
    refused(jp.port, rs256(keys["old"], header, '{"sub":"bob\\u0000alice","exp":%d}' % (now + 600)),
            "NUL character in a string in the token payload")
    refused(jp.port, rs256(keys["old"], header, '{"sub":"bob","exp":%d,"x":{"y":["\\u0000"]}}' % (now + 600)),
            "NUL character in a string in the token payload")


def test_a_token_without_exp_is_refused(jp, keys):
    tok = pyjwt.encode({"sub": "alice", "iat": int(time.time())}, keys["old"], algorithm="RS256",
                       headers={"kid": "2024-old"})
    refused(jp.port, tok, "token has no exp claim")


def test_an_oversized_token_is_refused(jp, keys):
    big = pyjwt.encode(claims(pad="x" * 9000), keys["old"], algorithm="RS256", headers={"kid": "2024-old"})
    assert len(big) > 8192
    refused(jp.port, big, "token too large")
    # Not even a JWT: refused for its size before any decoding.
    refused(jp.port, "!" * 8193, "token too large")


def test_hs256_with_the_public_key_is_refused(jp, keys):
    """The algorithm confusion attack against a JWKS: an HS256 token whose HMAC key is the
    RSA public key, under that key's kid."""
    pub = keys["old"].public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = b64(b'{"alg":"HS256","kid":"2024-old"}') + "." + b64(json.dumps(claims()).encode())
    sig = b64(hmac.new(pub, signing_input.encode(), hashlib.sha256).digest())
    refused(jp.port, signing_input + "." + sig, "algorithm 'HS256' is not allowed")


def test_named_hs256_keys_max_age_and_the_token_command(cluster, tmp_path):
    """auth.jwt.keys (two HS256 secrets of a rotation) with max_age: zonegate-proxy token signs
    with the first, under its kid, and the proxy accepts what it mints; a token claiming a
    longer lifetime than max_age is refused."""
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())
    new_secret = SECRET + "-rotated"
    jwt_cfg = {"max_age": "1h", "keys": [{"kid": "a", "alg": "HS256", "secret": SECRET},
                                         {"kid": "b", "alg": "HS256", "secret": new_secret}]}
    p = start_proxy(cluster, "hs-keys", auth={"jwt": jwt_cfg, "admin_token": ADMIN})
    try:
        cfg = tmp_path / "t.yaml"
        cfg.write_text(open(p.config_path).read())
        out = run_cli(["token", "--config", str(cfg), "--sub", "bob"])
        assert out.returncode == 0, out.stderr
        minted = out.stdout.strip()
        assert pyjwt.get_unverified_header(minted)["kid"] == "a"
        assert call(p.port, "GET", "/rpc/whoami", minted)[2]["user"] == "bob"
        out = run_cli(["token", "--config", str(cfg), "--sub", "bob", "--ttl", "7200"])
        assert out.returncode == 1 and "exceeds auth.jwt.max_age" in out.stderr
        now = int(time.time())
        for kid, secret in (("a", SECRET), ("b", new_secret)):
            tok = pyjwt.encode({"sub": "alice", "iat": now, "exp": now + 3600}, secret, algorithm="HS256",
                               headers={"kid": kid})
            assert call(p.port, "GET", "/rpc/whoami", tok)[0] == 200, kid
        long_lived = pyjwt.encode({"sub": "alice", "iat": now, "exp": now + 7200}, new_secret,
                                  algorithm="HS256", headers={"kid": "b"})
        refused(p.port, long_lived, "token lifetime exceeds max_age")
        refused(p.port, pyjwt.encode({"sub": "alice", "exp": now + 60}, SECRET, algorithm="HS256",
                                     headers={"kid": "c"}), "unknown key id 'c'")
    finally:
        stop_proxy(p)


def test_bad_keys_are_config_errors_with_their_line(tmp_path):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "weak.json").write_text(json.dumps({"keys": [jwk(weak, "w")]}))
    (tmp_path / "p384.json").write_text(json.dumps({"keys": [jwk(p384, "c")]}))
    (tmp_path / "broken.json").write_text('{"keys": [')
    cases = {
        "weak.json": "RSA key of 1024 bits (RSA >= 2048 bits is required)",
        "p384.json": "EC key not on curve P-256",
        "broken.json": "auth.jwt.jwks_file: not JSON",
    }
    for name, message in cases.items():
        cfg = tmp_path / "z.yaml"
        cfg.write_text("auth:\n  jwt:\n    algorithms: [RS256, ES256]\n    jwks_file: %s\n" % (tmp_path / name))
        out = run_cli(["--check-config", "--config", str(cfg)])
        assert out.returncode == 1, out.stdout
        assert "%s:4:16: " % cfg in out.stderr and message in out.stderr, out.stderr
    cfg = tmp_path / "k.yaml"
    cfg.write_text("auth:\n  jwt:\n    keys:\n      - {kid: a, alg: HS256, secret: x}\n"
                   "      - {kid: a, alg: HS256, secret: y}\n")
    out = run_cli(["--check-config", "--config", str(cfg)])
    assert out.returncode == 1
    assert "%s:5:15: auth.jwt.keys[1].kid: \"a\" is already the kid of auth.jwt.keys[0]" % cfg in out.stderr
