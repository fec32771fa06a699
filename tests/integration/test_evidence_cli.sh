#!/usr/bin/env bash
# `arca evidence verify|show` against the real hardware evidence in
# ../shared/vectors: every vector verifies at a time inside its window and
# --json prints exactly the fields expected.json lists; an expired VLEK,
# tampered or foreign VCEKs and a changed QE auth data are refused; the TCB
# status comes only from collateral. Verification times are fixed, never
# "now", because the vendors' certificates expire.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
arca="$ARCA_BUILD/bin/arca"
vec=${ARCA_VECTORS:-$ARCA_SRC/../shared/vectors}
[[ -x $arca ]] || { echo "SKIP: $arca not built"; exit 77; }
[[ -f $vec/expected.json ]] || { echo "SKIP: no evidence vectors at $vec (set ARCA_VECTORS)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to compare JSON"; exit 77; }
vec=$(cd "$vec" && pwd)

tmp=$(mktemp -d /tmp/arca-evidence.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0; passes=0
ok()   { passes=$((passes + 1)); echo "ok: $*"; }
bad()  { fails=$((fails + 1)); echo "FAIL: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# run OUT CMD…: stdout in $tmp/OUT, stderr in $tmp/OUT.err, status in $rc.
run() { local out=$1; shift; "$@" >"$tmp/$out" 2>"$tmp/$out.err"; rc=$?; }
expect_rc() { # expect_rc WHAT WANT OUT
  if [[ $rc -eq $2 ]]; then ok "$1 (exit $rc)"
  else bad "$1: exit $rc, want $2: $(head -c 600 "$tmp/$3") $(head -c 300 "$tmp/$3.err")"; fi
}
refused() { # refused WHAT OUT: exit status not 0
  if [[ $rc -ne 0 ]]; then ok "$1 (exit $rc)"; else bad "$1: exit 0: $(head -c 300 "$tmp/$2")"; fi
}
has() {
  grep -qE -- "$2" "$tmp/$1" && return 0
  echo "  /$2/ not in $1:"; sed 's/^/  | /' "$tmp/$1" "$tmp/$1.err" 2>/dev/null | head -n 20; return 1
}
hasnt() { ! grep -qE -- "$2" "$tmp/$1"; }

# The checks on JSON output live in one Python helper.
cat >"$tmp/jq.py" <<'PY'
import datetime, json, sys

META = {"ark_sha256", "chain", "leaf"}          # test metadata, not evidence fields
WINDOW = {"valid_from", "valid_until"}
ADDED = {"verified", "reason", "tcb_status"}    # what verify adds to the fields

def load(p):
    with open(p) as f:
        return json.load(f)

def ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)

def fmt(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "list":
    # name, a time one day into its window, leaf and chain files ("-": none)
    vec, = args
    exp = load(vec + "/expected.json")
    for name, e in sorted(exp.items()):
        at = fmt(ts(e["valid_from"]) + datetime.timedelta(days=1))
        leaf = e.get("leaf", "-")
        chain = e.get("chain", "-")
        if chain != "-" and not chain.startswith("roots/"):
            chain = "-"  # "auxblob (pinned: …)": the capture carries its chain
        print(f"{name}\t{at}\t{leaf}\t{chain}")
elif cmd == "inside":
    # a time one day into the intersection of the named vectors' windows
    vec, *names = args
    exp = load(vec + "/expected.json")
    print(fmt(max(ts(exp[n]["valid_from"]) for n in names) + datetime.timedelta(days=1)))
elif cmd == "verified":
    # the output of verify --json for NAME: verified, and exactly the fields
    vec, name, out = args
    e = {k: v for k, v in load(vec + "/expected.json")[name].items() if k not in META}
    o = load(out)
    errs = []
    if o.get("verified") is not True:
        errs.append(f"verified is {o.get('verified')!r}: {o.get('reason')}")
    for k, v in e.items():
        if k not in o:
            errs.append(f"missing {k}")
        elif o[k] != v or type(o[k]) is not type(v):
            errs.append(f"{k}: got {o[k]!r}, expected.json has {v!r}")
    for k in o:
        if k not in e and k not in ADDED:
            errs.append(f"extra field {k}")
    if "reason" in o or "tcb_status" in o:
        errs.append("reason or tcb_status present in a verified result without collateral")
    if errs:
        print("; ".join(errs))
        sys.exit(1)
elif cmd == "shown":
    # show --json: the fields only, no verdict, no window
    vec, name, out = args
    e = {k: v for k, v in load(vec + "/expected.json")[name].items() if k not in META | WINDOW}
    o = load(out)
    # json.dumps tells 2 from "2" and from true, which == would not
    diff = [k for k in sorted(set(o) | set(e)) if json.dumps(o.get(k)) != json.dumps(e.get(k))]
    if diff:
        print("show differs from expected.json in " +
              ", ".join(f"{k} (got {o.get(k)!r}, want {e.get(k)!r})" for k in diff[:6]))
        sys.exit(1)
elif cmd == "get":
    # prints one key of a JSON output ("<absent>" when it is not there)
    out, key = args
    o = load(out)
    v = o.get(key, "<absent>")
    print(json.dumps(v) if not isinstance(v, str) else v)
elif cmd == "flip-qe-auth":
    # copies a quote with the first byte of its QE auth data changed; the
    # layout is Intel's DCAP quote format (header, [v5 body descriptor],
    # body, signature data with the QE report certification data)
    src, dst = args
    q = bytearray(open(src, "rb").read())
    ver = int.from_bytes(q[0:2], "little")
    off = 48
    if ver == 3:
        off += 384
    elif ver == 4:
        off += 584
    else:
        body_type = int.from_bytes(q[48:50], "little")
        off += 6 + (648 if body_type == 3 else 584)
    off += 4 + 64 + 64                 # signature data length, signature, attestation key
    if ver != 3:
        off += 2 + 4                   # certification data type 6 and its size
    off += 384 + 64                    # QE report and its signature
    auth_len = int.from_bytes(q[off:off + 2], "little")
    assert auth_len > 0, "no QE auth data to change"
    q[off + 2] ^= 0x01
    open(dst, "wb").write(q)
else:
    sys.exit(f"unknown command {cmd}")
PY
py() { python3 "$tmp/jq.py" "$@"; }
py list "$vec" >"$tmp/list" || { bad "cannot read $vec/expected.json"; exit 1; }

# ---- every vector verifies and prints exactly its fields -------------------
n=0
while IFS=$'\t' read -r name at leaf chain; do
  n=$((n + 1))
  args=(--json --at "$at")
  [[ $leaf != - ]] && args+=(--leaf "$vec/$leaf")
  [[ $chain != - ]] && args+=(--chain "$vec/$chain")
  run v.json "$arca" evidence verify "${args[@]}" "$vec/$name"
  expect_rc "verify $name at $at" 0 v.json
  if msg=$(py verified "$vec" "$name" "$tmp/v.json" 2>&1); then ok "$name: --json fields equal expected.json"
  else bad "$name: $msg"; fi
  # The human form agrees, and says the TCB status of a quote is unknown.
  run v.txt "$arca" evidence verify "${args[@]:1}" "$vec/$name"
  check "$name: human verdict line" has v.txt '^verified: (SEV-SNP report|TDX quote|SGX quote) v[0-9]'
  case $name in
    sev-snp/*) check "$name: no TCB status claimed for SEV-SNP" hasnt v.txt 'TCB status' ;;
    *) check "$name: TCB status unknown without collateral" has v.txt '^TCB status: unknown \(no collateral given\)$'
       check "$name: never up to date without collateral" hasnt v.txt 'UpToDate' ;;
  esac
  # show: parse only, no verdict.
  run s.json "$arca" evidence show --json "$vec/$name"
  expect_rc "show --json $name" 0 s.json
  if msg=$(py shown "$vec" "$name" "$tmp/s.json" 2>&1); then ok "$name: show --json prints the fields only"
  else bad "$name: $msg"; fi
  run s.txt "$arca" evidence show "$vec/$name"
  expect_rc "show $name" 0 s.txt
  check "$name: show gives no verdict" bash -c \
    "grep -q 'parsed only, not verified' '$tmp/s.txt' && ! grep -qE '^(NOT )?verified:' '$tmp/s.txt'"
done <"$tmp/list"
if [[ $n -gt 0 && $n -eq $(wc -l <"$tmp/list") ]]; then ok "all $n vectors of expected.json checked"
else bad "checked $n of the vectors in expected.json"; fi

# ---- forced types -----------------------------------------------------------
snp_at=$(py inside "$vec" sev-snp/virtee-milan-report.hex)
run t.json "$arca" evidence verify --json --type sev-snp --at "$snp_at" --leaf "$vec/sev-snp/virtee-milan-vcek.der" \
  --chain "$vec/roots/amd-milan-ask-ark.pem" "$vec/sev-snp/virtee-milan-report.hex"
expect_rc "--type sev-snp on the hex form" 0 t.json
sgx_at=$(py inside "$vec" sgx/phala-quote-v3.dat)
run t.json "$arca" evidence verify --json --type tdx --at "$sgx_at" "$vec/sgx/phala-quote-v3.dat"
expect_rc "--type tdx on an SGX quote is refused" 1 t.json
check "the reason says what the file is" has t.json 'is an SGX quote, not the TDX quote'
run t.json "$arca" evidence verify --json --type sgx --at "$sgx_at" "$vec/sgx/phala-quote-v3.dat"
expect_rc "--type sgx on an SGX quote" 0 t.json
run t.json "$arca" evidence verify --json --type sev-snp --at "$sgx_at" "$vec/sgx/phala-quote-v3.dat"
expect_rc "--type sev-snp on a quote is refused" 1 t.json
check "  as not an SEV-SNP report" has t.json 'not an SEV-SNP report'
run t.json "$arca" evidence verify --json "$vec/tdx/gtg-tdreport.dat"
expect_rc "a TDREPORT is not evidence arca verifies" 1 t.json
check "  the reason suggests --type" has t.json 'neither an SEV-SNP report.*--type'
check "  verified is false" bash -c "[[ \$(python3 '$tmp/jq.py' get '$tmp/t.json' verified) == false ]]"

# ---- the VLEK chain has expired --------------------------------------------
vlek=(--leaf "$vec/sev-snp/trustee-milan-vlek.der" --chain "$vec/roots/amd-milan-ask-ark-asvk.pem"
      "$vec/sev-snp/trustee-milan-vlek-report.bin")
run x.json "$arca" evidence verify --json --at 2026-11-21T00:00:00Z "${vlek[@]}"
refused "the VLEK report at 2026-11-21 is refused" x.json
check "  the reason names the expired VLEK" bash -c \
  "python3 '$tmp/jq.py' get '$tmp/x.json' reason | grep -qE 'VLEK certificate expired on 2025-12-10'"
check "  verified is false" bash -c "[[ \$(python3 '$tmp/jq.py' get '$tmp/x.json' verified) == false ]]"
check "  the window is still reported" bash -c \
  "[[ \$(python3 '$tmp/jq.py' get '$tmp/x.json' valid_until) == 2025-12-10T22:14:21Z ]]"
run x.txt "$arca" evidence verify --at 2026-11-21T00:00:00Z "${vlek[@]}"
refused "the VLEK report at 2026-11-21 (human form)" x.txt
check "  first line says NOT verified and names the VLEK" bash -c \
  "head -n 1 '$tmp/x.txt' | grep -qE '^NOT verified: .*VLEK.*expired'"
if [[ $(date -u +%Y%m%d) > 20251210 ]]; then
  run x.json "$arca" evidence verify --json "${vlek[@]}"
  refused "the VLEK report at today's date (the default) is refused" x.json
  check "  for the expired VLEK" has x.json 'VLEK certificate expired'
fi
# An offset time is the same instant: 2025-12-11T00:14:21+02:00 is just
# after the VLEK's end, 2025-12-10T22:14:21Z.
run x.json "$arca" evidence verify --json --at 2025-12-11T00:14:22+02:00 "${vlek[@]}"
refused "RFC 3339 offsets are honoured (one second after expiry)" x.json
run x.json "$arca" evidence verify --json --at 2025-12-11T00:14:20.75+02:00 "${vlek[@]}"
expect_rc "  and one second before it verifies" 0 x.json

# ---- tampered and foreign VCEKs --------------------------------------------
while IFS=$'\t' read -r name at leaf chain; do
  [[ $name == sev-snp/* ]] || continue
  for badleaf in "$vec"/sev-snp/trustee-vcek-invalid-hwid-*.der; do
    for c in "$vec/roots/amd-milan-ask-ark.pem" "$vec/roots/amd-genoa-ask-ark.pem"; do
      run h.json "$arca" evidence verify --json --at "$at" --leaf "$badleaf" --chain "$c" "$vec/$name"
      refused "$(basename "$badleaf") never verifies $name ($(basename "$c"))" h.json
    done
  done
done <"$tmp/list"
# Each Milan report against the next one's VCEK, at a time all are valid.
milan=(gsg-milan-report.bin:gsg-milan-vcek.der trustee-milan-report.bin:trustee-milan-vcek.der
       virtee-milan-report.hex:virtee-milan-vcek.der)
both_at=$(py inside "$vec" sev-snp/gsg-milan-report.bin sev-snp/trustee-milan-report.bin \
  sev-snp/virtee-milan-report.hex)
for i in 0 1 2; do
  rep=${milan[$i]%%:*}; other=${milan[$(((i + 1) % 3))]#*:}
  run f.json "$arca" evidence verify --json --at "$both_at" --leaf "$vec/sev-snp/$other" \
    --chain "$vec/roots/amd-milan-ask-ark.pem" "$vec/sev-snp/$rep"
  refused "$rep with $other is refused" f.json
  check "  the reason points at the VCEK" has f.json 'VCEK'
done
# Without a VCEK, a raw report cannot verify, and the reason says what to pass.
run f.json "$arca" evidence verify --json --at "$both_at" "$vec/sev-snp/gsg-milan-report.bin"
refused "a raw report without its VCEK is refused" f.json
check "  the reason asks for the VCEK" has f.json 'none was given'
# One changed byte in the signed part (the measurement at 0x90).
python3 - "$vec/sev-snp/gsg-milan-report.bin" "$tmp/flip.bin" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[0x90] ^= 0x80; open(sys.argv[2], "wb").write(b)
PY
run f.json "$arca" evidence verify --json --at "$both_at" --leaf "$vec/sev-snp/gsg-milan-vcek.der" \
  --chain "$vec/roots/amd-milan-ask-ark.pem" "$tmp/flip.bin"
refused "a report with a flipped measurement bit is refused" f.json
check "  for its signature" has f.json 'signature does not verify'

# ---- QE auth data changed ---------------------------------------------------
for q in sgx/trustee-occlum-quote-v3.dat tdx/gtg-spr-e4-quote-v4-trailing.dat tdx/gtg-quote-v5.dat; do
  at=$(py inside "$vec" "$q")
  if ! py flip-qe-auth "$vec/$q" "$tmp/qe.dat" 2>"$tmp/qe.err"; then
    bad "cannot change $q: $(cat "$tmp/qe.err")"; continue
  fi
  run qa.json "$arca" evidence verify --json --at "$at" "$tmp/qe.dat"
  refused "$q with a byte of QE auth data changed is refused" qa.json
  check "  because the QE report no longer binds the key" has qa.json 'does not bind the attestation key'
done

# ---- collateral -------------------------------------------------------------
for pair in "tdx/phala-quote.dat tdx/phala-collateral.json UpToDate" \
            "sgx/phala-quote-v3.dat sgx/phala-collateral.json ConfigurationAndSWHardeningNeeded"; do
  read -r q c want <<<"$pair"
  run c.json "$arca" evidence verify --json --at 2025-07-01T00:00:00Z --collateral "$vec/$c" "$vec/$q"
  expect_rc "$q with $c at 2025-07-01" 0 c.json
  check "  tcb_status is $want" bash -c "[[ \$(python3 '$tmp/jq.py' get '$tmp/c.json' tcb_status) == $want ]]"
  run c.txt "$arca" evidence verify --at 2025-07-01T00:00:00Z --collateral "$vec/$c" "$vec/$q"
  check "  the human form says TCB status: $want" has c.txt "^TCB status: $want\$"
  run c.json "$arca" evidence verify --json --at 2025-07-01T00:00:00Z "$vec/$q"
  expect_rc "$q without collateral" 0 c.json
  check "  has no tcb_status at all" bash -c "[[ \$(python3 '$tmp/jq.py' get '$tmp/c.json' tcb_status) == '<absent>' ]]"
done
# The PCK CRL in the TDX collateral expired on 2025-07-19: stale collateral
# refuses the quote rather than being ignored.
run c.json "$arca" evidence verify --json --at 2025-09-01T00:00:00Z --collateral "$vec/tdx/phala-collateral.json" \
  "$vec/tdx/phala-quote.dat"
refused "stale collateral refuses the quote" c.json
check "  and the reason says which part" has c.json '"reason": "collateral: '
run c.json "$arca" evidence verify --json --collateral "$tmp/none.json" "$vec/tdx/phala-quote.dat"
expect_rc "a missing collateral file" 1 c.json

# ---- usage ------------------------------------------------------------------
run u.out "$arca" evidence verify --leaf "$vec/sev-snp/gsg-milan-vcek.der" "$vec/tdx/phala-quote.dat"
expect_rc "--leaf with a quote is a usage error" 2 u.out
run u.out "$arca" evidence verify --collateral "$vec/tdx/phala-collateral.json" "$vec/sev-snp/gsg-milan-report.bin"
expect_rc "--collateral with an SEV-SNP report is a usage error" 2 u.out
run u.out "$arca" evidence verify --at 2025-02-30T00:00:00Z "$vec/tdx/phala-quote.dat"
expect_rc "an impossible --at date" 2 u.out
run u.out "$arca" evidence verify --at yesterday "$vec/tdx/phala-quote.dat"
expect_rc "--at that is not RFC 3339" 2 u.out
run u.out "$arca" evidence verify --type arm "$vec/tdx/phala-quote.dat"
expect_rc "an unknown --type" 2 u.out
run u.out "$arca" evidence show --at 2025-07-01T00:00:00Z "$vec/tdx/phala-quote.dat"
expect_rc "show takes no --at" 2 u.out
run u.out "$arca" evidence verify
expect_rc "verify without a file" 2 u.out
run u.out "$arca" evidence
expect_rc "evidence without a subcommand" 2 u.out
run u.out "$arca" evidence verify "$tmp/does-not-exist"
expect_rc "a missing evidence file" 1 u.out
check "  says it cannot read it" has u.out.err 'cannot read the evidence'
run u.out "$arca" evidence verify --leaf "$vec/README.md" "$vec/sev-snp/gsg-milan-report.bin"
expect_rc "a leaf that is not a certificate" 1 u.out
run u.out "$arca" evidence verify --chain "$vec/README.md" --leaf "$vec/sev-snp/gsg-milan-vcek.der" \
  "$vec/sev-snp/gsg-milan-report.bin"
expect_rc "a chain with no certificate" 1 u.out
run u.out "$arca" help
check "help lists evidence" has u.out '^  evidence verify\|show'

echo "evidence cli: $passes passed, $fails failed"
[[ $fails -eq 0 ]]
