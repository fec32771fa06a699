#!/usr/bin/env bash
# arca-cas's HTTP API against the real daemon: TLS and pinning, session
# create/update/read with owners, predecessor and conflict rules, secrets
# never returned, every attestation refusal with its code and its audit
# record, bad and oversized input, idle connections, restart persistence,
# master key handling, the audit chain (one line per record under
# concurrent load) and its tail anchored in the store. cas-test-helper
# stands in for LAS (it signs sim evidence with a key we tell CAS to
# trust) and for the shield (it opens the sealed configuration).
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
cas="$ARCA_BUILD/bin/arca-cas"
helper="$ARCA_BUILD/bin/cas-test-helper"
for b in "$cas" "$helper"; do
  [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
for t in python3 openssl; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
python3 -c 'import ssl, http.client; assert ssl.HAS_TLSv1_3' 2>/dev/null || { echo "SKIP: python3 without TLS 1.3"; exit 77; }

tmp=$(mktemp -d /tmp/arca-cas-api.XXXXXX)
CAS_PID=
stop_cas() {
  [[ -n $CAS_PID ]] || return 0
  kill -TERM "$CAS_PID" 2>/dev/null
  wait "$CAS_PID"; local rc=$?
  CAS_PID=
  return $rc
}
cleanup() { stop_cas >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT

state="$tmp/state"
start_cas() {  # start_cas [extra args]; sets CAS_PID, CAS_ADDR, CAS_FPR
  : >"$tmp/cas.out"
  "$cas" --state "$state" --listen 127.0.0.1:0 --las "$tmp/no-las.sock" "$@" >"$tmp/cas.out" 2>>"$tmp/cas.err" &
  CAS_PID=$!
  for ((i = 0; i < 100; i++)); do
    grep -q '^ready ' "$tmp/cas.out" && break
    kill -0 "$CAS_PID" 2>/dev/null || break
    sleep 0.1
  done
  local line; line=$(grep '^ready ' "$tmp/cas.out")
  [[ -n $line ]] || { echo "FAIL: arca-cas did not start: $(tail -n 3 "$tmp/cas.err")"; CAS_PID=; return 1; }
  CAS_ADDR=$(sed -n 's/^ready listen=\([^ ]*\) .*/\1/p' <<<"$line")
  CAS_FPR=$(sed -n 's/.* fingerprint=\(SHA256:[^ ]*\)$/\1/p' <<<"$line")
  export CAS_ADDR CAS_FPR
}

# Owner identities: Ed25519 keys with self-signed certificates, named by
# their fingerprint as arca does (SHA256: + unpadded base64 of SHA-256 of
# the DER SubjectPublicKeyInfo).
mkid() {
  openssl req -x509 -newkey ed25519 -nodes -keyout "$tmp/$1.key" -out "$tmp/$1.crt" -subj "/CN=$1" -days 2 \
    >/dev/null 2>&1 || return 1
  echo "SHA256:$(openssl pkey -in "$tmp/$1.key" -pubout -outform DER | openssl dgst -sha256 -binary | base64 | tr -d '=')"
}
FPR_A=$(mkid A) && FPR_B=$(mkid B) || { echo "SKIP: openssl cannot make Ed25519 certificates"; exit 77; }
export FPR_A FPR_B

LAS1=$("$helper" las-key "$tmp/las1.key") && LAS2=$("$helper" las-key "$tmp/las2.key") || { echo "FAIL: helper"; exit 1; }
M1="sha256:$(printf 'program one' | sha256sum | cut -d' ' -f1)"
M2="sha256:$(printf 'program two' | sha256sum | cut -d' ' -f1)"
export LAS1 LAS2 M1 M2

start_cas || exit 1
printf '# trusted LAS platform keys\n%s  # this host\n' "$LAS1" >"$state/las-trust"

# The checks themselves, in Python (http.client over ssl); they print
# "ok: …" / "FAIL: …" lines and the pieces of state the shell needs next.
cat >"$tmp/t.py" <<'PY'
import base64, http.client, json, os, socket, ssl, subprocess, sys, time

tmp = os.environ["TMP"]; helper = os.environ["HELPER"]; state = os.environ["STATE"]
host, port = os.environ["CAS_ADDR"].rsplit(":", 1); port = int(port)
fails = 0
def ok(m): print("ok: " + m)
def bad(m):
    global fails; fails += 1; print("FAIL: " + m)
def check(m, c, info=""):
    (ok if c else bad)(m if c or not info else m + " — " + str(info)[:400])

def ctx(ident=None, tls12=False):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if tls12:
        c.maximum_version = ssl.TLSVersion.TLSv1_2
    if ident:
        c.load_cert_chain(os.path.join(tmp, ident + ".crt"), os.path.join(tmp, ident + ".key"))
    return c

def req(method, path, body=None, ident=None):
    conn = http.client.HTTPSConnection(host, port, context=ctx(ident), timeout=15)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body is not None else {})
    r = conn.getresponse(); data = r.read(); conn.close()
    try:
        j = json.loads(data)
    except Exception:
        j = None
    return r.status, j, data

def err(resp):
    s, j, _ = resp
    return s, (j or {}).get("error"), (j or {}).get("detail")

def helper_out(*args, stdin=None):
    return subprocess.run([helper] + list(args), input=stdin, capture_output=True, check=True, text=True).stdout.strip()

def audit_last():
    with open(os.path.join(state, "audit.log")) as f:
        return json.loads(f.read().strip().split("\n")[-1])

def policy(name, pw_size=24, predecessor=None, owners=None, measurement=None, extra_service="", with_pk=True):
    m = measurement or os.environ["M1"]
    y = "name: %s\n" % name
    if predecessor: y += "predecessor: %s\n" % predecessor
    if owners: y += "access:\n  owners: [%s]\n" % ", ".join('"%s"' % o for o in owners)
    y += ("services:\n"
          "  - name: svc\n"
          "    command: [/bin/app, --password, $$arca:pw$$]\n"
          "    measurement: \"%s\"\n"
          "    platform: {sim: {}}\n"
          "    environment:\n      PW: $$arca:pw$$\n      GIVEN: $$arca:given:hex$$\n"
          "    files:\n      /etc/app.ini: \"pw=$$arca:pw$$\\n\"\n"
          "      /etc/tls.crt: \"$$arca:tls$$\"\n      /etc/tls.key: \"$$arca:tls:key$$\"\n"
          "      /etc/chain.pem: \"$$arca:tls:chain$$\"\n      /etc/pk.pem: \"$$arca:pk$$\"\n" % m)
    y += extra_service
    y += ("secrets:\n"
          "  - {name: pw, kind: ascii, size: %d}\n"
          "  - {name: given, kind: binary, value: \"c0ffee00deadbeef\"}\n"
          "  - {name: pk, kind: private-key}\n"
          "  - {name: tls, kind: x509, common_name: api.example, dns: [api.example, www.api.example]}\n" % pw_size)
    if not with_pk:
        y = y.replace('      /etc/pk.pem: "$$arca:pk$$"\n', "").replace("  - {name: pk, kind: private-key}\n", "")
    return {"policy": y}

FIXED = None
def fixed_sentence(code, detail):
    return detail is not None and all(x not in detail for x in ("sha256:", "SHA256:", "demo", "svc", "/"))

phase = sys.argv[1]

def attest(session="demo", service="svc", las="las1", meas=None, nonce=None, bind=None, mutate=None, platform="sim", flags=None):
    """One attestation like a shield; returns (status, code, config-or-None, nonce)."""
    if nonce is None:
        s, j, _ = req("POST", "/v1/attest/nonce")
        assert s == 200, (s, j)
        nonce = j["nonce"]
    priv, pub = helper_out("keypair").split()
    args = ["evidence", "--las-key", os.path.join(tmp, las + ".key"), "--measurement", meas or os.environ["M1"],
            "--nonce", nonce, "--pub", pub, "--session", session, "--service", service]
    if bind: args += ["--bind-session", bind]
    if flags is not None: args += ["--flags", str(flags)]
    ev = helper_out(*args)
    if mutate: ev = mutate(ev)
    body = {"session": session, "service": service, "platform": platform, "nonce": nonce, "pubkey": pub, "evidence": ev}
    s, j, data = req("POST", "/v1/attest", body)
    cfg = None
    if s == 200:
        cfg = json.loads(helper_out("open", "--priv", priv, "--pub", pub, stdin=data.decode()))
    return s, (j or {}).get("error"), cfg, nonce, (j or {}).get("detail")

if phase == "api":
    # TLS: the presented key is the one the ready line names.
    conn = http.client.HTTPSConnection(host, port, context=ctx(), timeout=10)
    conn.request("GET", "/healthz"); r = conn.getresponse(); body = r.read()
    der = conn.sock.getpeercert(binary_form=True); conn.close()
    spki = subprocess.run("openssl x509 -inform DER -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary",
                          shell=True, input=der, capture_output=True, check=True).stdout
    fpr = "SHA256:" + base64.b64encode(spki).decode().rstrip("=")
    check("presented certificate key matches the ready line", fpr == os.environ["CAS_FPR"], fpr)
    check("/healthz", r.status == 200 and json.loads(body) == {"status": "ok"}, body)
    try:
        c12 = ctx(tls12=True); s = socket.create_connection((host, port), timeout=5)
        c12.wrap_socket(s).close(); bad("TLS 1.2 accepted")
    except (ssl.SSLError, OSError):
        ok("TLS 1.2 refused")
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        d = s.recv(4096)
    except OSError:
        d = b""
    s.close()
    check("plain HTTP gets no HTTP answer", not d.startswith(b"HTTP/"), d[:60])

    # Sessions.
    s, code, detail = err(req("POST", "/v1/sessions", policy("demo")))
    check("create without client certificate: 401 unauthenticated", (s, code) == (401, "unauthenticated"), (s, code))
    check("unauthenticated detail is the fixed sentence", fixed_sentence(code, detail), detail)
    s, j, _ = req("POST", "/v1/sessions", policy("demo"), ident="A")
    check("create as A", s == 200 and j["name"] == "demo" and len(j["hash"]) == 64, (s, j))
    h1 = j["hash"] if s == 200 else ""
    s, code, _ = err(req("POST", "/v1/sessions", policy("demo"), ident="A"))
    check("create again: 409 conflict", (s, code) == (409, "conflict"), (s, code))
    s, code, _ = err(req("POST", "/v1/sessions", policy("demo"), ident="B"))
    check("create of a taken name by B: 409 conflict", (s, code) == (409, "conflict"), (s, code))
    p = policy("demo2"); p["policy"] = p["policy"].replace("services:", "bogus: 1\nservices:")
    s, code, detail = err(req("POST", "/v1/sessions", p, ident="A"))
    check("unknown key: 400 invalid_policy with file:line:col", s == 400 and code == "invalid_policy" and "<session>:" in (detail or ""), (s, code, detail))
    s, code, _ = err(req("POST", "/v1/sessions", policy("demo3", predecessor="00" * 32), ident="A"))
    check("predecessor on create: 400 invalid_policy", (s, code) == (400, "invalid_policy"), (s, code))
    s, j, data = req("GET", "/v1/sessions/demo", ident="A")
    check("read as A", s == 200 and j["name"] == "demo" and j["hash"] == h1, (s, data[:200]))
    if s == 200:
        sec = {x["name"]: x for x in j["secrets"]}
        check("read lists secrets with generated flags", sec.get("pw", {}).get("generated") is True and sec.get("given", {}).get("generated") is False
              and sec.get("pk", {}).get("kind") == "private-key", j["secrets"])
        check("read has no secret value fields", all(set(x) == {"name", "kind", "generated"} for x in j["secrets"]), j["secrets"])
        check("read does not show the given value", b"c0ffee00deadbeef" not in data.lower() and b"wP/uAN6tvu8" not in data, data[:300])
        check("read shows the policy", isinstance(j.get("policy"), dict), j.get("policy"))
    s, code, _ = err(req("GET", "/v1/sessions/demo"))
    check("read without certificate: 401", (s, code) == (401, "unauthenticated"), (s, code))
    s, code, _ = err(req("GET", "/v1/sessions/demo", ident="B"))
    check("read as B: 403 forbidden", (s, code) == (403, "forbidden"), (s, code))
    s, code, _ = err(req("PUT", "/v1/sessions/demo", policy("demo", pw_size=8, predecessor=h1), ident="B"))
    check("update as B: 403 forbidden", (s, code) == (403, "forbidden"), (s, code))
    s, code, _ = err(req("PUT", "/v1/sessions/demo", "{\"policy\": ", ident="B"))
    check("non-owner with a broken body still gets 403", (s, code) == (403, "forbidden"), (s, code))
    s, j, _ = req("GET", "/v1/sessions/demo", ident="A")
    check("store unchanged after refused updates", s == 200 and j["hash"] == h1, j)
    s, code, detail = err(req("PUT", "/v1/sessions/demo", policy("demo", predecessor="ab" * 32), ident="A"))
    check("stale predecessor: 409 stale_predecessor", (s, code) == (409, "stale_predecessor"), (s, code, detail))
    s, code, _ = err(req("PUT", "/v1/sessions/demo", policy("demo"), ident="A"))
    check("update without predecessor: 409 stale_predecessor", (s, code) == (409, "stale_predecessor"), (s, code))
    s, code, _ = err(req("PUT", "/v1/sessions/demo", policy("other", predecessor=h1), ident="A"))
    check("update naming another session: 400 invalid_policy", (s, code) == (400, "invalid_policy"), (s, code))
    s, code, _ = err(req("PUT", "/v1/sessions/nosuch", policy("nosuch", predecessor=h1), ident="A"))
    check("update of an unknown session: 404", (s, code) == (404, "not_found"), (s, code))
    s, code, _ = err(req("GET", "/v1/sessions/nosuch", ident="A"))
    check("read of an unknown session: 404", (s, code) == (404, "not_found"), (s, code))
    # Shared ownership through access.owners.
    s, j, _ = req("POST", "/v1/sessions", policy("shared", owners=[os.environ["FPR_B"]]), ident="A")
    check("create with access.owners [B] as A", s == 200, (s, j))
    s, code, _ = err(req("GET", "/v1/sessions/shared", ident="A"))
    check("creator not listed in access.owners is not an owner", (s, code) == (403, "forbidden"), (s, code))
    s, j, _ = req("GET", "/v1/sessions/shared", ident="B")
    check("listed owner B reads", s == 200, (s, j))

    # Bad input, all answered with 4xx and nothing more.
    s, code, _ = err(req("POST", "/v1/sessions", "{\"policy\": \"name: x", ident="A"))
    check("truncated JSON: 400 bad_request", (s, code) == (400, "bad_request"), (s, code))
    s, code, _ = err(req("POST", "/v1/sessions", {"policy": 5}, ident="A"))
    check("wrong type: 400 bad_request", (s, code) == (400, "bad_request"), (s, code))
    s, code, _ = err(req("POST", "/v1/attest", {"session": "demo", "service": "svc", "platform": "sim",
                                                 "nonce": "!!!notbase64!!!", "pubkey": "AAAA", "evidence": "AAAA"}))
    check("bad base64 in attest: 400 bad_request", (s, code) == (400, "bad_request"), (s, code))
    s, code, detail = err(req("POST", "/v1/attest", "[1,2"))
    check("truncated attest body: 400 with the fixed sentence", (s, code) == (400, "bad_request") and fixed_sentence(code, detail), (s, code, detail))
    s, code, _ = err(req("GET", "/v1/nothing"))
    check("unknown path: 404", (s, code) == (404, "not_found"), (s, code))
    s, code, _ = err(req("GET", "/v1/sessions/..%2F..%00x", ident="A"))
    check("odd session path: 404", (s, code) == (404, "not_found"), (s, code))
    try:
        st, _, _ = req("POST", "/v1/sessions", "x" * (10 << 20), ident="A")
        check("10 MB body: 413", st == 413, st)
    except (OSError, http.client.HTTPException) as e:
        ok("10 MB body: connection dropped (%s)" % type(e).__name__)
    s, _, _ = req("GET", "/healthz")
    check("still serving after bad input", s == 200, s)

    # Idle connections: 500 plain TCP and 20 finished TLS handshakes.
    idle = []
    for i in range(500):
        try:
            idle.append(socket.create_connection((host, port), timeout=5))
        except OSError as e:
            bad("opening idle connection %d: %s" % (i, e)); break
    tls_idle = []
    for i in range(20):
        s0 = socket.create_connection((host, port), timeout=5)
        tls_idle.append(ctx().wrap_socket(s0))
    t0 = time.time()
    s, j, _ = req("GET", "/v1/sessions/demo", ident="A")
    check("%d idle connections held: a request still succeeds (%.2f s)" % (len(idle) + len(tls_idle), time.time() - t0),
          s == 200, s)
    time.sleep(12)
    closed = 0
    for so in idle + tls_idle:
        so.settimeout(0.5)
        try:
            closed += so.recv(1) == b""
        except (OSError, ssl.SSLError) as e:
            closed += not isinstance(e, socket.timeout)
        so.close()
    check("idle connections dropped after the timeout (%d of %d)" % (closed, len(idle) + len(tls_idle)),
          closed == len(idle) + len(tls_idle))
    print("H1 " + h1)

elif phase == "attest":
    s, code, cfg, nonce, _ = attest()
    check("attestation granted", s == 200 and cfg is not None, (s, code))
    pw = None
    if cfg:
        env = dict(e.split("=", 1) for e in cfg["env"])
        pw = env.get("PW", "")
        check("generated ascii secret: 24 characters of [A-Za-z0-9]", len(pw) == 24 and pw.isalnum() and pw.isascii(), pw)
        check("argv rendered", cfg["argv"] == ["/bin/app", "--password", pw], cfg["argv"])
        check("given binary secret rendered as hex", env.get("GIVEN") == "c0ffee00deadbeef", env.get("GIVEN"))
        f = {x["path"]: base64.b64decode(x["data"]).decode() for x in cfg["files"]}
        check("file rendered", f.get("/etc/app.ini") == "pw=%s\n" % pw, f)
        d = os.path.join(tmp, "rendered"); os.makedirs(d, exist_ok=True)
        for name in ("tls.crt", "tls.key", "chain.pem", "pk.pem"):
            open(os.path.join(d, name), "w").write(f.get("/etc/" + name, ""))
        chain = f.get("/etc/chain.pem", "")
        open(os.path.join(d, "ca.pem"), "w").write(chain[chain.find("-----END CERTIFICATE-----") + 26:])
        sh = lambda c: subprocess.run(c, shell=True, cwd=d, capture_output=True, text=True)
        subj = sh("openssl x509 -in tls.crt -noout -subject -ext subjectAltName").stdout
        check("x509 secret: certificate for the policy's names", "api.example" in subj and "www.api.example" in subj, subj)
        v = sh("openssl verify -CAfile ca.pem tls.crt")
        check("x509 secret: certificate verifies against the session CA in :chain", v.returncode == 0, v.stdout + v.stderr)
        k1 = sh("openssl pkey -in tls.key -pubout").stdout; k2 = sh("openssl x509 -in tls.crt -pubkey -noout").stdout
        check("x509 secret: :key is the certificate's key", k1 != "" and k1 == k2)
        check("private-key secret renders a PEM private key", sh("openssl pkey -in pk.pem -noout").returncode == 0
              and "PRIVATE KEY" in f.get("/etc/pk.pem", ""))
        print("CERT " + f.get("/etc/tls.crt", "").replace("\n", "|"))
        # The first base64 line of a PKCS#8 key is mostly a fixed header;
        # the second is key material.
        print("KEYLINE " + f.get("/etc/pk.pem", "").split("\n")[2])
        a = audit_last()
        check("grant audited", a.get("event") == "attest_granted" and a.get("session") == "demo" and a.get("service") == "svc"
              and a.get("las") == os.environ["LAS1"] and a.get("measurement") == os.environ["M1"], a)
    s, code, _, _, detail = attest(nonce=nonce)
    check("nonce replay: 403 nonce_invalid", (s, code) == (403, "nonce_invalid"), (s, code))
    check("refusal detail is the fixed sentence", fixed_sentence(code, detail), detail)
    s, code, _, _, _ = attest(nonce=base64.b64encode(os.urandom(32)).decode())
    check("unknown nonce: 403 nonce_invalid", (s, code) == (403, "nonce_invalid"), (s, code))
    s, code, _, _, _ = attest(las="las2")
    a = audit_last()
    check("untrusted LAS key: 403 platform_untrusted", (s, code) == (403, "platform_untrusted"), (s, code))
    check("audit names the untrusted key", a.get("error") == "platform_untrusted" and os.environ["LAS2"] in a.get("reason", ""), a)
    flip = lambda ev: base64.b64encode(bytes(b ^ (1 if i == 200 else 0) for i, b in enumerate(base64.b64decode(ev)))).decode()
    s, code, _, _, _ = attest(mutate=flip)
    check("flipped signature bit: 403 evidence_invalid", (s, code) == (403, "evidence_invalid"), (s, code))
    s, code, _, _, _ = attest(mutate=lambda ev: base64.b64encode(base64.b64decode(ev)[:100]).decode())
    check("short evidence: 403 evidence_invalid", (s, code) == (403, "evidence_invalid"), (s, code))
    s, code, _, _, _ = attest(platform="tdx")
    check("unsupported platform: 403 evidence_invalid", (s, code) == (403, "evidence_invalid"), (s, code))
    s, code, _, _, _ = attest(bind="shared")
    check("report data for another session: 403 binding_mismatch", (s, code) == (403, "binding_mismatch"), (s, code))
    s, code, _, _, _ = attest(session="nosuch")
    check("unknown session: 403 unknown_service", (s, code) == (403, "unknown_service"), (s, code))
    s, code, _, _, _ = attest(service="nosuch")
    check("unknown service: 403 unknown_service", (s, code) == (403, "unknown_service"), (s, code))
    s, code, _, _, _ = attest(meas=os.environ["M2"])
    a = audit_last()
    check("other measurement: 403 measurement_mismatch", (s, code) == (403, "measurement_mismatch"), (s, code))
    check("audit shows seen and expected measurement", os.environ["M1"] in a.get("reason", "") and os.environ["M2"] in a.get("reason", ""), a)
    s, code, _, _, detail = attest(flags=0)
    a = audit_last()
    check("evidence without ptrace protection: 403 platform_unprotected", (s, code) == (403, "platform_unprotected"), (s, code))
    check("platform_unprotected detail is the fixed sentence", fixed_sentence(code, detail) and "kernel.yama.ptrace_scope" in detail
          and "no-ptrace-protection" in detail, detail)
    check("audit says the session does not tolerate no-ptrace-protection", a.get("error") == "platform_unprotected"
          and "does not tolerate no-ptrace-protection" in a.get("reason", "") and "tolerated" not in a, a)
    s, _, _ = req("GET", "/metrics")
    m = req("GET", "/metrics")[2].decode()
    check("metrics count grants and refusals", "arca_cas_attestations_granted_total 1" in m
          and 'arca_cas_attestations_refused_total{reason="nonce_invalid"} 2' in m
          and 'arca_cas_requests_total{endpoint="attest",status="403"}' in m and "arca_cas_sessions 2" in m, m[-800:])
    if pw:
        print("PW " + pw)

elif phase == "update":
    h1 = os.environ["H1"]; pw = os.environ["PW"]
    s, j, _ = req("PUT", "/v1/sessions/demo", policy("demo", predecessor=h1), ident="A")
    check("update with the current hash", s == 200 and j["hash"] != h1, (s, j))
    h2 = j["hash"] if s == 200 else ""
    s, code, cfg, _, _ = attest()
    check("secret kept across an update that leaves it unchanged", cfg is not None and dict(e.split("=", 1) for e in cfg["env"])["PW"] == pw, (s, code))
    s, code, _ = err(req("PUT", "/v1/sessions/demo", policy("demo", predecessor=h1), ident="A"))
    check("the old hash is stale now", (s, code) == (409, "stale_predecessor"), (s, code))
    print("H2 " + h2)

elif phase == "resize":
    h2 = os.environ["H2"]; pw = os.environ["PW"]
    s, j, _ = req("PUT", "/v1/sessions/demo", policy("demo", pw_size=40, predecessor=h2), ident="A")
    check("update changing the secret's size", s == 200, (s, j))
    s, code, cfg, _, _ = attest()
    pw2 = dict(e.split("=", 1) for e in cfg["env"])["PW"] if cfg else ""
    check("a resized secret is generated anew", len(pw2) == 40 and pw2 != pw, pw2)
    print("PW2 " + pw2)
    h3 = req("GET", "/v1/sessions/demo", ident="A")[1]["hash"]
    s, j, _ = req("PUT", "/v1/sessions/demo", policy("demo", pw_size=40, predecessor=h3, with_pk=False), ident="A")
    check("update dropping a secret", s == 200, (s, j))
    s, j2, _ = req("PUT", "/v1/sessions/demo", policy("demo", pw_size=40, predecessor=j["hash"] if s == 200 else ""), ident="A")
    check("update adding it back", s == 200, (s, j2))
    s, code, cfg, _, _ = attest()
    f = {x["path"]: base64.b64decode(x["data"]).decode() for x in cfg["files"]} if cfg else {}
    pk = f.get("/etc/pk.pem", "")
    check("a dropped and re-added secret is a new one", "PRIVATE KEY" in pk and os.environ["KEYLINE"] not in pk, (s, code))
    check("other secrets kept through both updates", dict(e.split("=", 1) for e in cfg["env"])["PW"] == pw2 if cfg else False)

elif phase == "persist":
    s, code, cfg, _, _ = attest()
    pw2 = dict(e.split("=", 1) for e in cfg["env"])["PW"] if cfg else ""
    check("after a restart the same generated secret is released", pw2 != "" and pw2 == os.environ["PW2"], (s, code))
    crt = {x["path"]: base64.b64decode(x["data"]).decode() for x in cfg["files"]}.get("/etc/tls.crt", "") if cfg else ""
    check("after a restart and two updates the same certificate is released", crt != "" and crt.replace("\n", "|") == os.environ["CERT"])

elif phase == "trust":
    path = os.path.join(state, "las-trust")
    open(path, "w").write(os.environ["LAS2"] + "\n")
    s, code, _, _, _ = attest()
    a = audit_last()
    check("LAS key removed from las-trust: platform_untrusted", (s, code) == (403, "platform_untrusted"), (s, code))
    check("… and the audit names the key", os.environ["LAS1"] in a.get("reason", ""), a)
    open(path, "w").write("# comment\nnot a fingerprint\n  %s   # back\n" % os.environ["LAS1"])
    os.chmod(path, 0o666)
    s, code, _, _, _ = attest()
    check("group/other-writable las-trust trusts nothing", (s, code) == (403, "platform_untrusted"), (s, code))
    os.chmod(path, 0o644)
    s, code, _, _, _ = attest()
    check("las-trust fixed: trusted again without a restart", s == 200, (s, code))

elif phase == "casev":
    import hashlib
    nonce = os.urandom(32)
    s, j, _ = req("GET", "/v1/cas/evidence?nonce=" + nonce.hex())
    check("CAS evidence from its LAS: platform sim", s == 200 and j.get("platform") == "sim" and j.get("fingerprint") == os.environ["CAS_FPR"], (s, j))
    if s == 200 and j.get("evidence"):
        ev = base64.b64decode(j["evidence"])
        conn = http.client.HTTPSConnection(host, port, context=ctx(), timeout=10); conn.connect()
        der = conn.sock.getpeercert(binary_form=True); conn.close()
        spki = subprocess.run("openssl x509 -inform DER -pubkey -noout | openssl pkey -pubin -outform DER",
                              shell=True, input=der, capture_output=True, check=True).stdout
        want = hashlib.sha512(nonce + hashlib.sha256(spki).digest() + b"arca-cas").digest()
        check("CAS evidence binds the nonce and the TLS key", len(ev) == 224 and ev[64:128] == want)
        las = "SHA256:" + base64.b64encode(hashlib.sha256(bytes.fromhex("302a300506032b6570032100") + ev[128:160]).digest()).decode().rstrip("=")
        check("CAS evidence is signed by the host's LAS key", las == os.environ["LAS1"], las)
    s, j, _ = req("GET", "/v1/cas/evidence?nonce=" + nonce.hex())
    check("no LAS answering: platform none, no evidence", s == 200 and j == {"fingerprint": os.environ["CAS_FPR"], "platform": "none"}, j)
    s, code, _ = err(req("GET", "/v1/cas/evidence?nonce=abc"))
    check("CAS evidence with a bad nonce: 400", (s, code) == (400, "bad_request"), (s, code))

elif phase == "expired":
    s, j, _ = req("POST", "/v1/attest/nonce")
    check("nonce reports its time to live", s == 200 and j["expires_in"] == 1, j)
    time.sleep(1.5)
    s, code, _, _, _ = attest(nonce=j["nonce"])
    check("expired nonce: 403 nonce_expired", (s, code) == (403, "nonce_expired"), (s, code))
    s, code, _, _, _ = attest(nonce=j["nonce"])
    check("an expired nonce is gone after one try: nonce_invalid", (s, code) == (403, "nonce_invalid"), (s, code))

sys.exit(1 if fails else 0)
PY

passes=0; fails=0
run_py() {  # run_py PHASE → output in $tmp/PHASE.out
  TMP="$tmp" HELPER="$helper" STATE="$state" python3 "$tmp/t.py" "$1" >"$tmp/$1.out" 2>&1
  local rc=$?
  grep -E '^(ok|FAIL): ' "$tmp/$1.out"
  passes=$((passes + $(grep -c '^ok: ' "$tmp/$1.out")))
  fails=$((fails + $(grep -c '^FAIL: ' "$tmp/$1.out")))
  if [[ $rc -ne 0 ]] && ! grep -q '^FAIL: ' "$tmp/$1.out"; then
    echo "FAIL: phase $1 crashed:"; tail -n 15 "$tmp/$1.out"; fails=$((fails + 1))
  fi
}
ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
val() { sed -n "s/^$1 //p" "$tmp/$2.out" | tail -n 1; }

run_py api;     export H1=$(val H1 api)
run_py attest;  export PW=$(val PW attest) CERT=$(val CERT attest) KEYLINE=$(val KEYLINE attest)
run_py trust
# CAS's own evidence: a stand-in LAS answers exactly one request on the
# socket CAS was told about.
"$helper" las-serve "$tmp/no-las.sock" "$tmp/las1.key" 1 >"$tmp/las-serve.out" 2>&1 &
las_pid=$!
for ((i = 0; i < 50; i++)); do grep -q listening "$tmp/las-serve.out" && break; sleep 0.1; done
run_py casev
kill "$las_pid" 2>/dev/null; wait "$las_pid" 2>/dev/null
run_py update;  export H2=$(val H2 update)
run_py resize;  export PW2=$(val PW2 resize)

# Restart: sessions and generated secrets persist.
if stop_cas; then ok "SIGTERM stops arca-cas with status 0"; else bad "arca-cas exit status on SIGTERM"; fi
start_cas || exit 1
run_py persist

# Group commit: concurrent attestations share writes and fdatasyncs, yet
# each is its own line of the chain.
lines0=$(wc -l <"$state/audit.log")
load_out=$("$helper" load --cas "$CAS_ADDR" --pin "$CAS_FPR" --las-key "$tmp/las1.key" --measurement "$M1" \
  --session demo --service svc --clients 8 --seconds 1)
n_att=$(sed -n 's/.* attestations=\([0-9]*\) failed=0 .*/\1/p' <<<"$load_out")
new_lines=$(( $(wc -l <"$state/audit.log") - lines0 ))
granted=$(tail -n "+$((lines0 + 1))" "$state/audit.log" | grep -c '"event":"attest_granted"')
if [[ -n $n_att && $n_att -gt 8 && $new_lines -eq $n_att && $granted -eq $n_att ]]; then
  ok "8 concurrent clients: $n_att attestations, $new_lines audit lines, one per attestation"
else
  bad "concurrent attestations: '$load_out', $new_lines new lines, $granted granted records"
fi
if grep -q -e '"events":' -e '"event":"batch"' "$state/audit.log"; then bad "a batch record in the audit log"; else ok "no batch records"; fi
metrics=$(python3 - "$CAS_ADDR" <<'PY'
import http.client, ssl, sys
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
h, p = sys.argv[1].rsplit(":", 1)
k = http.client.HTTPSConnection(h, int(p), context=c, timeout=10); k.request("GET", "/metrics")
print(k.getresponse().read().decode())
PY
)
recs=$(sed -n 's/^arca_cas_audit_records_total //p' <<<"$metrics")
writes=$(sed -n 's/^arca_cas_audit_writes_total //p' <<<"$metrics")
[[ -n $recs ]] && echo "info: audit records $recs in $writes writes (group commit)"

# Throughput figures on request (ARCA_CAS_LOAD_SECONDS=N): printed, never
# asserted (style rule 10). The helper signs evidence itself, so this
# measures CAS and the client, not a LAS.
if [[ -n ${ARCA_CAS_LOAD_SECONDS:-} ]]; then
  for mode in "" --reconnect; do
    for n in 8 16; do
      echo "load: $("$helper" load --cas "$CAS_ADDR" --pin "$CAS_FPR" --las-key "$tmp/las1.key" --measurement "$M1" \
        --session demo --service svc --clients "$n" --seconds "$ARCA_CAS_LOAD_SECONDS" $mode)"
    done
  done
fi

# Expiry with a short time to live.
stop_cas
start_cas --nonce-ttl 1 || exit 1
run_py expired
stop_cas

# Secrets appear nowhere an operator can read.
if [[ ${#PW} -eq 24 && ${#PW2} -eq 40 && ${#KEYLINE} -ge 40 ]]; then
  leaked=0
  for f in "$state"/* "$tmp/cas.err" "$tmp"/api.out; do
    [[ -f $f ]] || continue
    if grep -qaF -e "$PW" -e "$PW2" -e "$KEYLINE" "$f"; then bad "generated secret found in $f"; leaked=1; fi
  done
  grep -qaiF c0ffee00deadbeef "$state/store.db"* && { bad "given secret value in clear in the store"; leaked=1; }
  [[ $leaked -eq 0 ]] && ok "no secret value in the state directory, the audit log or the log"
else
  bad "no generated secret to search for (PW='$PW' PW2='$PW2')"
fi

# Audit chain and the events it holds.
if out=$("$helper" audit-verify "$state/audit.log"); then ok "audit chain verifies ($out)"; else bad "audit chain: $out"; fi
for ev in session_create session_update session_read session_refused attest_granted attest_refused; do
  if grep -q "\"event\":\"$ev\"" "$state/audit.log"; then ok "audit has $ev"; else bad "audit lacks $ev"; fi
done
for reason in nonce_invalid nonce_expired evidence_invalid platform_untrusted binding_mismatch unknown_service measurement_mismatch platform_unprotected forbidden stale_predecessor unauthenticated; do
  grep -q "\"error\":\"$reason\"" "$state/audit.log" || bad "audit lacks a refusal with error $reason"
done
cp "$state/audit.log" "$tmp/audit-edited.log"
sed -i '3s/"session_read"/"session_raed"/; 3s/"demo"/"demp"/' "$tmp/audit-edited.log"
if "$helper" audit-verify "$tmp/audit-edited.log" >/dev/null; then bad "an edited audit record verifies"; else ok "an edited audit record is detected"; fi

# Master key: refused when others can read it, and a wrong key is refused.
chmod 640 "$state/master.key"
if timeout 10 "$cas" --state "$state" --listen 127.0.0.1:0 >"$tmp/k.out" 2>"$tmp/k.err"; then bad "started with a group-readable master key"
elif grep -q "master key" "$tmp/k.err"; then ok "group-readable master key refused: $(head -n1 "$tmp/k.err")"
else bad "group-readable key: $(cat "$tmp/k.err")"; fi
chmod 600 "$state/master.key"
head -c 32 /dev/urandom >"$tmp/other.key"; chmod 600 "$tmp/other.key"
if timeout 10 "$cas" --state "$state" --listen 127.0.0.1:0 --key-file "$tmp/other.key" >"$tmp/k.out" 2>"$tmp/k.err"; then bad "started with the wrong master key"
elif grep -q "does not open" "$tmp/k.err"; then ok "wrong master key refused: $(grep 'does not open' "$tmp/k.err" | head -n1)"
else bad "wrong key: $(cat "$tmp/k.err")"; fi
mkdir -p "$tmp/keys" && chmod 700 "$tmp/keys"
if start_cas --key-file "$tmp/keys/fresh.key" --state "$tmp/state2" 2>/dev/null && [[ -f $tmp/keys/fresh.key && ! -e $tmp/state2/master.key ]] &&
   [[ $(stat -c %a "$tmp/keys/fresh.key") == 600 ]]; then ok "--key-file keeps the master key outside the state directory"; else bad "--key-file"; fi
stop_cas

# The audit log's tail is anchored in the store: a log cut short or
# rewritten while CAS was stopped is refused at start, the intact one is not.
log="$state/audit.log"
cp "$log" "$tmp/audit-backup.log"
nrec=$(wc -l <"$log")
try_start() {  # try_start NAME [args]: CAS must refuse to start
  if timeout 10 "$cas" --state "$state" --listen 127.0.0.1:0 --las "$tmp/no-las.sock" "${@:2}" >"$tmp/a.out" 2>"$tmp/a.err"; then
    bad "$1: arca-cas started"; return 1
  fi
  grep -q '^ready ' "$tmp/a.out" && { bad "$1: arca-cas got ready"; return 1; }
  return 0
}
sed -i '$d' "$log"
if try_start "last line cut off"; then
  want="audit log $log ends at record $((nrec - 1)) but the store recorded $nrec: the log was truncated or rewritten; restore it from backup"
  if grep -qF "$want" "$tmp/a.err"; then ok "audit log with its last line cut off: refused ($want)"; else bad "last line cut off: $(cat "$tmp/a.err")"; fi
fi
cp "$tmp/audit-backup.log" "$log"
if start_cas; then ok "intact audit log: arca-cas starts"; stop_cas; else bad "intact audit log refused: $(tail -n 2 "$tmp/cas.err")"; fi
# The last record rewritten with its chain fields made to fit: the file
# verifies on its own, but its head is not the one the store recorded.
cp "$log" "$tmp/audit-backup.log"
nrec=$(wc -l <"$log")
python3 - "$log" <<'PY'
import hashlib, json, sys
path = sys.argv[1]
lines = open(path).read().splitlines()
r = json.loads(lines[-1]); del r["hash"]
r["reason"] = "rewritten"
canon = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
r["hash"] = hashlib.sha256(canon(r).encode()).hexdigest()
lines[-1] = canon(r)
open(path, "w").write("\n".join(lines) + "\n")
PY
if "$helper" audit-verify "$log" >/dev/null; then
  if try_start "last record rewritten"; then
    if grep -qF "record $nrec is not the one the store recorded" "$tmp/a.err" && grep -qF "restore it from backup" "$tmp/a.err"; then
      ok "audit log with a rewritten last record: refused"
    else bad "rewritten last record: $(cat "$tmp/a.err")"; fi
  fi
else
  bad "the rewritten log should verify as a file: $("$helper" audit-verify "$log")"
fi
# No backup: the operator accepts the log as it is; the break is recorded
# and later starts check against the new head.
sed -i '$d' "$log"
if start_cas --accept-audit-log; then
  last=$(tail -n 1 "$log")
  if [[ $last == *'"event":"audit_log_accepted"'* && $last == *"\"store_seq\":$nrec"* ]]; then ok "--accept-audit-log records the break"; else bad "--accept-audit-log: last record $last"; fi
  stop_cas
  if start_cas; then ok "after --accept-audit-log the next start needs no flag"; stop_cas; else bad "start after --accept-audit-log"; fi
  if out=$("$helper" audit-verify "$log"); then ok "audit chain after the break verifies ($out)"; else bad "audit chain after the break: $out"; fi
else
  bad "--accept-audit-log: $(tail -n 2 "$tmp/cas.err")"
fi

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
