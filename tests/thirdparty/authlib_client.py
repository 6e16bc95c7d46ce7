#!/usr/bin/env python3
"""An independent, strict OAuth2 client against a live scimgate: Authlib's OAuth2Session
(authlib.integrations.requests_client) with its usual response checks, nothing disabled.

Starts `scimgate serve` on a free loopback port with a temporary store (made with the real
`config` binary), then checks:
  - discovery: /.well-known/oauth-authorization-server validated by Authlib's RFC 8414 model,
    issuer = the server's URL; every later request uses the endpoints it names;
  - client_credentials with client_secret_basic and with client_secret_post, a protected
    SCIM request with the token;
  - authorization code + PKCE S256: the login and consent HTML forms driven over HTTP with
    requests (hidden fields incl. the CSRF token parsed from the page), Authlib checks the
    state of the redirect and exchanges the code; a wrong code_verifier is invalid_grant;
  - refresh: rotation (new refresh token), the old refresh token rejected with invalid_grant
    (and, by reuse detection, the rotated family revoked);
  - revoke (RFC 7009) then introspect (RFC 7662) shows active:false; unknown tokens are 200.

Usage: authlib_client.py [BIN_DIR]   (default target/debug; needs `scimgate` and `config`).
Prints one line per check; exits 1 on the first failure.
"""

import html.parser
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata, get_well_known_url

ROOT = Path(__file__).resolve().parents[2]
BIN = (ROOT / (sys.argv[1] if len(sys.argv) > 1 else "target/debug")).resolve()
READ, WRITE = "user-directory.read.all", "user-directory.write.all"
USER, PASSWORD = "alice", "alice-password-1"
TOOL_PASSWORD = "authlib-test-tool-pw"
# Nothing listens there: the user agent below never follows the final redirect.
REDIRECT = "http://127.0.0.1:9/callback"

CHECKS = 0


class CheckFailed(Exception):
    pass


def ok(what):
    global CHECKS
    CHECKS += 1
    print(f"ok   {what}", flush=True)


def check(cond, what, detail=""):
    if not cond:
        raise CheckFailed(f"{what}: {detail}" if detail else what)
    ok(what)


def expect_oauth_error(code, what, fn):
    """`fn` must raise Authlib's OAuthError with error `code`."""
    try:
        got = fn()
    except OAuthError as e:
        check(e.error == code, what, f"got {e.error}: {e.description}")
        return
    raise CheckFailed(f"{what}: expected {code}, got a token {dict(got) if got else got}")


class Server:
    """A temp store made with `config`, and `scimgate serve` on a free loopback port."""

    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="scimgate-authlib-"))
        self.db = self.tmp / "scimgate.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMGATE_")}
        self.env.update(SCIMGATE_DB=str(self.db), SCIMGATE_TOOL_PASSWORD=TOOL_PASSWORD, TZ="UTC")
        self.proc = None
        self.base = None

    def config(self, *args, env=None):
        r = subprocess.run([str(BIN / "config"), *args], env={**self.env, **(env or {})},
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise CheckFailed(f"config {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r.stdout

    def register(self, name, *args):
        v = json.loads(self.config("--json", "register-api-client", "-n", name, *args))
        return v["id"], v["client_secret"]

    def start(self):
        for attempt in range(1, 4):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            log = open(self.tmp / f"server-{attempt}.log", "wb")
            self.proc = subprocess.Popen(
                [str(BIN / "scimgate"), "serve", "--db", str(self.db), "--listen", f"127.0.0.1:{port}"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}"
            for _ in range(150):
                if self.proc.poll() is not None:
                    break
                try:
                    if requests.get(f"{base}/healthz", timeout=2).ok:
                        self.base = base
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            self.stop()
            print(f"server did not come up on port {port} (attempt {attempt}); logs in {self.tmp}")
        raise CheckFailed("could not start scimgate serve")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FormParser(html.parser.HTMLParser):
    """The forms of a page: action, method, inputs (name → value) and submit buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "inputs": {}, "buttons": []})
        elif self.forms and tag == "input" and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1]["buttons"].append((a["name"], a.get("value") or ""))


def the_form(page):
    p = FormParser()
    p.feed(page)
    if len(p.forms) != 1:
        raise CheckFailed(f"expected one form on the page, found {len(p.forms)}: {page[:2000]}")
    return p.forms[0]


def submit(ua, base, form, fields):
    data = dict(form["inputs"])
    data.update(fields)
    url = base + form["action"] if form["action"].startswith("/") else form["action"]
    return ua.post(url, data=data, allow_redirects=False, timeout=30)


def authorize_in_browser(ua, base, url, login=True):
    """Drive the authorization pages like a browser; return the redirect's Location."""
    r = ua.get(url, allow_redirects=False, timeout=30)
    if r.status_code == 200 and login:
        form = the_form(r.text)
        check("csrf_token" in form["inputs"] and form["inputs"]["csrf_token"],
              "login page carries a CSRF token in a hidden field")
        check({"username", "password"} <= set(form["inputs"]), "login page asks for user name and password")
        r = submit(ua, base, form, {"username": USER, "password": PASSWORD})
    if r.status_code == 200:
        page = r.text
        check("Allow" in page and "read the users and groups in the directory" in page,
              "consent page shows the scopes in plain words")
        form = the_form(page)
        check(("decision", "allow") in form["buttons"], "consent page has an Allow button")
        r = submit(ua, base, form, {"decision": "allow"})
    check(r.status_code in (302, 303) and r.headers.get("location", "").startswith(REDIRECT),
          "the pages redirect to the registered redirect URI", f"{r.status_code} {r.headers.get('location')}")
    return r.headers["location"]


def main():
    srv = Server()
    failed = False
    try:
        srv.config("init")
        srv.config("create-user", "-u", USER, env={"SCIMGATE_USER_PASSWORD": PASSWORD})
        cc_id, cc_secret = srv.register("authlib client_credentials", "-G", "client_credentials",
                                        "-S", READ, "-S", WRITE)
        web_id, web_secret = srv.register("authlib web client", "--client-profile=WEB",
                                          "-G", "authorization_code", "-G", "refresh_token",
                                          "-S", READ, "-S", WRITE, "-R", REDIRECT)
        srv.start()
        base = srv.base
        ok(f"scimgate serve on {base} (store {srv.db})")
        run(base, cc_id, cc_secret, web_id, web_secret)
        print(f"authlib client: {CHECKS} checks passed")
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        failed = True
        print(f"FAIL {type(e).__name__}: {e}", flush=True)
        traceback.print_exc()
        print(f"(server logs and store kept in {srv.tmp})")
    finally:
        srv.stop()
        if not failed and not os.environ.get("KEEP_TMP"):
            shutil.rmtree(srv.tmp, ignore_errors=True)
    return 1 if failed else 0


def run(base, cc_id, cc_secret, web_id, web_secret):
    # --- discovery (RFC 8414)
    plain = requests.Session()
    plain.trust_env = False
    r = plain.get(get_well_known_url(base, external=True), timeout=30)
    check(r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"),
          "discovery document served as JSON", f"{r.status_code} {r.headers.get('content-type')}")
    meta = AuthorizationServerMetadata(r.json())
    meta.validate()
    ok("Authlib's RFC 8414 validation accepts the metadata")
    check(meta["issuer"] == base, "issuer is the URL the metadata was fetched from", meta["issuer"])
    for k in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        check(meta.get(k, "").startswith(base + "/"), f"metadata names {k}", meta.get(k))
    check("S256" in meta["code_challenge_methods_supported"]
          and "plain" not in meta["code_challenge_methods_supported"], "PKCE S256 offered, plain not")
    for m in ("client_secret_basic", "client_secret_post"):
        check(m in meta["token_endpoint_auth_methods_supported"], f"token endpoint supports {m}")
    for g in ("authorization_code", "refresh_token", "client_credentials"):
        check(g in meta["grant_types_supported"], f"grant {g} listed")
    token_ep, authz_ep = meta["token_endpoint"], meta["authorization_endpoint"]
    revoke_ep, introspect_ep = meta["revocation_endpoint"], meta["introspection_endpoint"]

    def session(client_id, secret, method, **kw):
        s = OAuth2Session(client_id, secret, token_endpoint_auth_method=method,
                          revocation_endpoint_auth_method=method, default_timeout=30, **kw)
        s.trust_env = False
        return s

    def introspect(s, token):
        r = s.introspect_token(introspect_ep, token=token)
        if r.status_code != 200:
            raise CheckFailed(f"introspection answered {r.status_code}: {r.text}")
        return r.json()

    # --- client_credentials, both client authentication methods
    cc_tokens = {}
    for method in ("client_secret_basic", "client_secret_post"):
        s = session(cc_id, cc_secret, method, scope=READ)
        tok = s.fetch_token(token_ep, grant_type="client_credentials")
        check(tok.get("access_token", "").startswith("sgat_") and tok["token_type"].lower() == "bearer",
              f"client_credentials with {method}: a bearer access token", dict(tok))
        check(tok.get("scope") == READ and "refresh_token" not in tok,
              f"client_credentials with {method}: the asked scope, no refresh token", dict(tok))
        check(tok.get("expires_at") and tok["expires_at"] > time.time(), "Authlib computed expires_at")
        r = s.get(f"{base}/scim/v2/Users")
        check(r.status_code == 200, f"client_credentials with {method}: the token reads /scim/v2/Users",
              str(r.status_code))
        v = introspect(s, tok["access_token"])
        check(v.get("active") is True and v.get("client_id") == cc_id and v.get("scope") == READ,
              f"introspection with {method}: active, this client, the scope", v)
        cc_tokens[method] = tok["access_token"]
    bad = session(cc_id, "sgcs_wrong", "client_secret_basic")
    expect_oauth_error("invalid_client", "a wrong client secret is invalid_client",
                       lambda: bad.fetch_token(token_ep, grant_type="client_credentials"))
    too_much = session(cc_id, cc_secret, "client_secret_post", scope="user-directory.admin")
    expect_oauth_error("invalid_scope", "an unknown scope is invalid_scope",
                       lambda: too_much.fetch_token(token_ep, grant_type="client_credentials"))

    # --- authorization code + PKCE S256, the pages driven over HTTP
    ua = requests.Session()  # the user's browser: cookies, no automatic redirects
    ua.trust_env = False
    web = session(web_id, web_secret, "client_secret_basic", scope=f"{READ} {WRITE}",
                  redirect_uri=REDIRECT, code_challenge_method="S256")
    verifier = generate_token(48)
    url, state = web.create_authorization_url(authz_ep, code_verifier=verifier)
    check("code_challenge=" in url and "code_challenge_method=S256" in url, "Authlib put a S256 challenge in the URL")
    location = authorize_in_browser(ua, base, url)
    q = parse_qs(urlsplit(location).query)
    check(q.get("state") == [state] and q.get("iss") == [meta["issuer"]],
          "redirect carries the state and iss = issuer (RFC 9207)", location)
    tok1 = web.fetch_token(token_ep, authorization_response=location, code_verifier=verifier)
    check(tok1.get("access_token", "").startswith("sgat_") and tok1.get("refresh_token", "").startswith("sgrt_"),
          "authorization code exchanged (state checked by Authlib): access + refresh token", dict(tok1))
    check(sorted(tok1["scope"].split()) == [READ, WRITE], "both scopes granted", tok1["scope"])
    r = web.get(f"{base}/scim/v2/Users")
    check(r.status_code == 200, "the access token reads /scim/v2/Users through OAuth2Session", str(r.status_code))
    expect_oauth_error("invalid_grant", "the same code again is invalid_grant",
                       lambda: web.fetch_token(token_ep, authorization_response=location, code_verifier=verifier))
    check(introspect(web, tok1["access_token"]).get("active") is False,
          "a replayed code revokes what it issued (introspection: active false)")

    # A second authorization (consent remembered: no pages) with a wrong code_verifier.
    web2 = session(web_id, web_secret, "client_secret_post", scope=f"{READ} {WRITE}",
                   redirect_uri=REDIRECT, code_challenge_method="S256")
    verifier2 = generate_token(48)
    url2, _ = web2.create_authorization_url(authz_ep, code_verifier=verifier2)
    location2 = authorize_in_browser(ua, base, url2, login=False)
    expect_oauth_error("invalid_grant", "a wrong code_verifier is invalid_grant",
                       lambda: web2.fetch_token(token_ep, authorization_response=location2,
                                                code_verifier=generate_token(48)))

    # A third authorization for the refresh, revoke and introspect checks.
    web3 = session(web_id, web_secret, "client_secret_post", scope=f"{READ} {WRITE}",
                   redirect_uri=REDIRECT, code_challenge_method="S256")
    verifier3 = generate_token(48)
    url3, _ = web3.create_authorization_url(authz_ep, code_verifier=verifier3)
    location3 = authorize_in_browser(ua, base, url3, login=False)
    tok3 = web3.fetch_token(token_ep, authorization_response=location3, code_verifier=verifier3)
    check(tok3.get("refresh_token", "").startswith("sgrt_"), "code exchanged with client_secret_post")

    # --- refresh: rotation and reuse detection
    rt_old = tok3["refresh_token"]
    tok4 = web3.refresh_token(token_ep, refresh_token=rt_old)
    check(tok4.get("access_token", "").startswith("sgat_") and tok4["access_token"] != tok3["access_token"],
          "refresh: a new access token", dict(tok4))
    check(tok4.get("refresh_token", "").startswith("sgrt_") and tok4["refresh_token"] != rt_old,
          "refresh: rotated, a new refresh token")
    check(web3.token["refresh_token"] == tok4["refresh_token"], "Authlib keeps the new refresh token")
    tok5 = web3.refresh_token(token_ep)
    check(tok5["refresh_token"] not in (rt_old, tok4["refresh_token"]), "refresh with the stored (rotated) token works")
    expect_oauth_error("invalid_grant", "the old refresh token is rejected with invalid_grant",
                       lambda: web3.refresh_token(token_ep, refresh_token=rt_old))
    check(introspect(web3, tok5["refresh_token"]).get("active") is False
          and introspect(web3, tok5["access_token"]).get("active") is False,
          "reuse of a rotated refresh token revoked the whole grant family")

    # --- revoke (RFC 7009) then introspect (RFC 7662)
    web4 = session(web_id, web_secret, "client_secret_basic", scope=f"{READ} {WRITE}",
                   redirect_uri=REDIRECT, code_challenge_method="S256")
    verifier4 = generate_token(48)
    url4, _ = web4.create_authorization_url(authz_ep, code_verifier=verifier4)
    tok6 = web4.fetch_token(token_ep, authorization_response=authorize_in_browser(ua, base, url4, login=False),
                            code_verifier=verifier4)
    v = introspect(web4, tok6["access_token"])
    check(v.get("active") is True and v.get("token_type") == "Bearer" and v.get("sub") == USER
          and v.get("client_id") == web_id and isinstance(v.get("exp"), int) and isinstance(v.get("iat"), int),
          "introspection of a fresh access token: active with token_type, sub, client_id, exp, iat", v)
    check(introspect(web4, tok6["refresh_token"]).get("active") is True, "introspection of the refresh token: active")
    r = web4.revoke_token(revoke_ep, token=tok6["access_token"], token_type_hint="access_token")
    check(r.status_code == 200, "revoke the access token (client_secret_basic): 200", f"{r.status_code} {r.text}")
    check(introspect(web4, tok6["access_token"]) == {"active": False}, "revoked access token: {\"active\": false}")
    r = web4.get(f"{base}/scim/v2/Users")
    check(r.status_code == 401, "the revoked access token no longer reads /scim/v2/Users", str(r.status_code))
    r = web4.revoke_token(revoke_ep, token=tok6["refresh_token"], token_type_hint="refresh_token")
    check(r.status_code == 200, "revoke the refresh token: 200", f"{r.status_code} {r.text}")
    check(introspect(web4, tok6["refresh_token"]) == {"active": False}, "revoked refresh token: {\"active\": false}")
    expect_oauth_error("invalid_grant", "a revoked refresh token cannot refresh",
                       lambda: web4.refresh_token(token_ep, refresh_token=tok6["refresh_token"]))
    r = web4.revoke_token(revoke_ep, token="sgat_thisTokenDoesNotExist")
    check(r.status_code == 200, "revoking an unknown token answers 200 (RFC 7009)", f"{r.status_code} {r.text}")

    post = session(cc_id, cc_secret, "client_secret_post")
    r = post.revoke_token(revoke_ep, token=cc_tokens["client_secret_post"])
    check(r.status_code == 200, "revoke a client_credentials token with client_secret_post: 200", r.text)
    check(introspect(post, cc_tokens["client_secret_post"]) == {"active": False},
          "introspection with client_secret_post after revoke: active false")
    check(introspect(post, cc_tokens["client_secret_basic"]).get("active") is True,
          "the client's other token is still active")


if __name__ == "__main__":
    sys.exit(main())
