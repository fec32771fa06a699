#!/usr/bin/env bash
# Protected volumes at the real arca-cas (docs/VOLUMES.md "Freshness",
# CONTRACTS.md "Volumes"): a service that mounts a data volume gets a key
# CAS generated once and keeps (across attestations, session updates and
# restarts), no tag at first and then the last tag recorded; tags are
# recorded by compare and swap with the token of an attested instance;
# a previous tag CAS does not hold is a volume_rollback (409, audited); a
# wrong token or a code volume is refused (403); a code volume gets its
# secret's key, its pinned tag and readonly. cas-test-helper plays the
# shield (attest-volumes, volume-tag) and signs sim evidence with a LAS
# key CAS is told to trust. Keys are never printed: the helper prints
# their SHA-256.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca="$ARCA_BUILD/bin/arca"
helper="$ARCA_BUILD/bin/cas-test-helper"
for b in "$arca" "$helper" "$ARCA_BUILD/bin/arca-cas"; do
  [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
for t in python3 sha256sum; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done

tmp=$(mktemp -d /tmp/arca-cas-volumes.XXXXXX)
export ARCA_HOME="$tmp/home"
cleanup() { arca_stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0; passes=0
ok()   { passes=$((passes + 1)); echo "ok: $*"; }
bad()  { fails=$((fails + 1)); echo "FAIL: $*"; }
# expect WHAT WANT GOT
expect() { if [[ $3 == "$2" ]]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi; }

arca_start_cas "$tmp" --las "$tmp/no-las.sock" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
LAS=$("$helper" las-key "$tmp/las.key") || { echo "FAIL: helper las-key"; exit 1; }
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$LAS" >/dev/null || exit 1
audit="$ARCA_CAS_STATE/audit.log"

M="sha256:$(printf 'volume test program' | sha256sum | cut -d' ' -f1)"
CODE_KEY=$(python3 -c 'import os; print(os.urandom(32).hex())')
CODE_KEY_SHA=$(python3 -c "import hashlib,sys; print(hashlib.sha256(bytes.fromhex('$CODE_KEY')).hexdigest())")
CODE_TAG=$(python3 -c 'import os; print(os.urandom(32).hex())')
# A session name with '/': the tag URL carries it as it is.
S=team/vols

policy() {  # policy [EXTRA_ENV]
  cat <<YAML
name: $S
services:
  - name: app
    command: [/bin/app]
    measurement: "$M"
    platform: {sim: {}}
    environment: {GREETING: "${1:-hello}"}
    volumes:
      - {name: data, path: /var/lib/app}
      - {name: code, path: /opt/app}
  - name: plain
    command: [/bin/plain]
    measurement: "$M"
    platform: {sim: {}}
secrets:
  - {name: codekey, kind: binary, value: "$CODE_KEY"}
volumes:
  - {name: data}
  - {name: code, mode: authenticated, key: codekey, tag: "$CODE_TAG"}
YAML
}
policy >"$tmp/s.yaml"
"$arca" session create "$tmp/s.yaml" >"$tmp/create.out" 2>&1 || { cat "$tmp/create.out"; exit 1; }

# attest [TOKENS_FILE [SERVICE]]: prints the helper's lines
attest() {
  "$helper" attest-volumes --cas "$ARCA_CAS" --pin "$CAS_FPR" --las-key "$tmp/las.key" --measurement "$M" \
    --session "$S" --service "${2:-app}" --tokens "${1:-$tmp/tok}"
}
field() {  # field OUTPUT VOLUME KEY
  sed -n "s/^volume $2 \(.* \)\{0,1\}$3=\([^ ]*\).*/\2/p" <<<"$1" | head -n1
}
tag() {  # tag VOLUME PREVIOUS NEW [TOKENS_FILE | --token-b64 B64]
  local src=(--tokens "$tmp/tok")
  if [[ ${4:-} == --token-b64 ]]; then src=(--token-b64 "$5"); elif [[ -n ${4:-} ]]; then src=(--tokens "$4"); fi
  "$helper" volume-tag --cas "$ARCA_CAS" --pin "$CAS_FPR" --session "$S" --volume "$1" "${src[@]}" \
    --previous "$2" --tag "$3" 2>>"$tmp/helper.err"
}
last_audit() { tail -n 1 "$audit"; }
jget() {  # jget JSON KEY: the value, strings bare, others as JSON
  python3 -c 'import json, sys; v = json.loads(sys.argv[1]).get(sys.argv[2]); print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}
rnd() { python3 -c 'import os; print(os.urandom(32).hex())'; }
A=$(rnd); B=$(rnd); C=$(rnd); A2=$(rnd); A3=$(rnd)

# --- first attestation: a new data volume ---
out=$(attest); echo "$out" | sed 's/key_sha256=.*/key_sha256=…/'
expect "first attestation granted" granted "$(head -n1 <<<"$out")"
expect "data volume: no tag yet" none "$(field "$out" data tag)"
expect "data volume: writable" 0 "$(field "$out" data readonly)"
expect "data volume: path" /var/lib/app "$(field "$out" data path)"
expect "data volume: mode encrypted (the default)" encrypted "$(field "$out" data mode)"
K1=$(field "$out" data key_sha256)
[[ $K1 =~ ^[0-9a-f]{64}$ ]] && ok "data volume has a key" || bad "data volume key: '$K1'"
expect "code volume: the pinned tag" "$CODE_TAG" "$(field "$out" code tag)"
expect "code volume: read-only" 1 "$(field "$out" code readonly)"
expect "code volume: mode" authenticated "$(field "$out" code mode)"
expect "code volume: the secret's key" "$CODE_KEY_SHA" "$(field "$out" code key_sha256)"
rec=$(grep '"event":"attest_granted"' "$audit" | tail -n1)
expect "the grant that made the key says so" '["data"]' "$(jget "$rec" volumes_created)"
[[ $(stat -c %a "$tmp/tok") == 600 ]] && ok "tokens file is 0600" || bad "tokens file mode"

# A service without volumes: no "volumes" in its configuration.
out2=$(attest "$tmp/tok-plain" plain)
expect "service without volumes granted" granted "$(head -n1 <<<"$out2")"
expect "service without volumes gets none" 0 "$(grep -c '^volume ' <<<"$out2")"

# --- tags: compare and swap ---
expect "first tag (previous none) stored" stored "$(tag data none "$A")"
out=$(attest "$tmp/tok2")
expect "second attestation sees tag A" "$A" "$(field "$out" data tag)"
expect "second attestation: same data key" "$K1" "$(field "$out" data key_sha256)"
rec=$(grep '"event":"attest_granted"' "$audit" | tail -n1)
expect "a grant that made no key lists none" null "$(jget "$rec" volumes_created)"

n_before=$(wc -l <"$audit")
expect "previous B (CAS holds A): rollback" rollback "$(tag data "$B" "$C" "$tmp/tok2")"
rec=$(last_audit)
expect "rollback audited: event" volume_rollback "$(jget "$rec" event)"
expect "rollback audited: outcome" refused "$(jget "$rec" outcome)"
expect "rollback audited: session" "$S" "$(jget "$rec" session)"
expect "rollback audited: volume" data "$(jget "$rec" volume)"
expect "rollback audited: presented previous" "$B" "$(jget "$rec" presented_previous)"
expect "rollback audited: held tag" "$A" "$(jget "$rec" held_tag)"
expect "rollback audited: error code" volume_rollback "$(jget "$rec" error)"
expect "rollback: one audit record" $((n_before + 1)) "$(wc -l <"$audit")"
expect "previous none while CAS holds A: rollback" rollback "$(tag data none "$C" "$tmp/tok2")"
rec=$(last_audit)
expect "that rollback shows previous null" null "$(jget "$rec" presented_previous)"

# The HTTP answer itself: 409 volume_rollback, the fixed sentence.
tokb64=$(awk '$1 == "data" {print $2}' "$tmp/tok2")
cat >"$tmp/raw.py" <<'PY'
import http.client, json, os, ssl, sys
host, port = os.environ["ARCA_CAS"].rsplit(":", 1)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
conn = http.client.HTTPSConnection(host, int(port), context=c, timeout=10)
conn.request("POST", sys.argv[1], body=sys.argv[2], headers={"Content-Type": "application/json"})
r = conn.getresponse(); d = r.read()
try:
    j = json.loads(d)
except Exception:
    j = {}
print(r.status, j.get("error", j.get("tag")), j.get("detail", ""))
PY
raw() { ARCA_CAS=$ARCA_CAS python3 "$tmp/raw.py" "$@"; }
resp=$(raw "/v1/volumes/$S/data/tag" "{\"token\":\"$tokb64\",\"previous\":\"$B\",\"tag\":\"$C\"}")
[[ $resp == "409 volume_rollback "* ]] && ok "raw: 409 volume_rollback" || bad "raw rollback: $resp"
[[ $resp != *"$A"* && $resp != *"$B"* ]] && ok "raw: the 409 carries no tag" || bad "raw 409 shows data: $resp"
resp=$(raw "/v1/volumes/team%2Fvols/data/tag" "{\"token\":\"$tokb64\",\"previous\":\"$B\",\"tag\":\"$C\"}")
[[ $resp == "409 volume_rollback "* ]] && ok "raw: a session name with %2F names the same session" || bad "raw %2F: $resp"
resp=$(raw "/v1/volumes/$S/data/tag" "{\"token\":\"$tokb64\",\"previous\":\"$B\",\"tag\":\"$C\",\"x\":1}")
[[ $resp == "400 bad_request "* ]] && ok "raw: unknown member refused (400)" || bad "raw unknown member: $resp"
resp=$(raw "/v1/volumes/$S/data/tag" "{\"token\":\"$tokb64\",\"previous\":\"${B^^}\",\"tag\":\"$C\"}")
[[ $resp == "400 bad_request "* ]] && ok "raw: upper-case hex refused (400)" || bad "raw upper-case: $resp"
resp=$(raw "/v1/volumes/$S/data/nottag" "{}")
[[ $resp == "404 not_found "* ]] && ok "raw: other paths under /v1/volumes are 404" || bad "raw 404: $resp"
resp=$(raw "/v1/volumes/$S/data/tag" "{\"token\":\"$tokb64\",\"previous\":\"$A\",\"tag\":\"$A\"}")
expect "raw: 200 answers the tag stored" "200 $A " "$resp"

# --- refusals: tokens and code volumes ---
wrong=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')
expect "a token CAS never gave: denied" denied "$(tag data "$A" "$B" --token-b64 "$wrong")"
codetok=$(awk '$1 == "code" {print $2}' "$tmp/tok2")
expect "the code volume's token is not good for the data volume" denied "$(tag data "$A" "$B" --token-b64 "$codetok")"
resp=$(raw "/v1/volumes/$S/data/tag" "{\"token\":\"$wrong\",\"previous\":\"$A\",\"tag\":\"$B\"}")
[[ $resp == "403 forbidden "* && $resp != *"$A"* && $resp != *data* && $resp != *vols* ]] \
  && ok "raw: 403 forbidden with the fixed sentence only" || bad "raw wrong token: $resp"
resp=$(raw "/v1/volumes/$S/nosuch/tag" "{\"token\":\"$tokb64\",\"previous\":\"$A\",\"tag\":\"$B\"}")
[[ $resp == "403 forbidden "* ]] && ok "raw: a good token for another volume name: 403" || bad "raw other volume: $resp"
expect "posting to the code volume: denied" denied "$(tag code none "$B" "$tmp/tok2")"
rec=$(last_audit)
expect "code volume refusal audited" volume_tag_refused "$(jget "$rec" event)"
expect "code volume refusal: forbidden" forbidden "$(jget "$rec" error)"
expect "code volume refusal: presented tag" "$B" "$(jget "$rec" presented_tag)"
resp=$(raw "/v1/volumes/$S/code/tag" "{\"token\":\"$codetok\",\"previous\":null,\"tag\":\"$B\"}")
[[ $resp == "403 forbidden "*read-only* ]] && ok "raw: code volume 403 says read-only" || bad "raw code volume: $resp"
out=$(attest "$tmp/tok3")
expect "refusals changed nothing: tag A" "$A" "$(field "$out" data tag)"

# --- an older instance's token still works (several instances) ---
expect "first instance's token: A -> A2 stored" stored "$(tag data "$A" "$A2" "$tmp/tok")"
expect "stale instance now presenting A: rollback" rollback "$(tag data "$A" "$A3" "$tmp/tok3")"

# --- metrics ---
metrics=$(python3 - <<PY
import http.client, ssl
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
h, p = "$ARCA_CAS".rsplit(":", 1)
conn = http.client.HTTPSConnection(h, int(p), context=c, timeout=10)
conn.request("GET", "/metrics"); print(conn.getresponse().read().decode())
PY
)
expect "metrics: tags stored" "arca_cas_volume_tags_total 3" "$(grep '^arca_cas_volume_tags_total ' <<<"$metrics")"
expect "metrics: rollbacks" "arca_cas_volume_rollbacks_total 5" "$(grep '^arca_cas_volume_rollbacks_total ' <<<"$metrics")"
grep -q 'arca_cas_requests_total{endpoint="volume_tag",status="409"}' <<<"$metrics" \
  && ok "metrics: volume_tag endpoint counted" || bad "metrics: no volume_tag endpoint line"

# --- restart: tags and keys survive ---
arca_restart_cas "$tmp" --las "$tmp/no-las.sock" || { bad "CAS restart"; exit 1; }
out=$(attest "$tmp/tok4")
expect "after restart: tag A2 kept" "$A2" "$(field "$out" data tag)"
expect "after restart: same data key" "$K1" "$(field "$out" data key_sha256)"
expect "after restart: a token from before still works" stored "$(tag data "$A2" "$A3" "$tmp/tok")"

# --- session update: the data volume's key and tag are kept ---
policy updated >"$tmp/s2.yaml"
"$arca" session update "$tmp/s2.yaml" >"$tmp/update.out" 2>&1 && ok "session updated" || { bad "session update: $(cat "$tmp/update.out")"; }
out=$(attest "$tmp/tok5")
expect "after update: same data key" "$K1" "$(field "$out" data key_sha256)"
expect "after update: tag A3 kept" "$A3" "$(field "$out" data tag)"

# --- a bounded number of tokens per volume: the oldest go ---
for ((i = 0; i < 64; i++)); do attest "$tmp/tok-loop" >/dev/null || { bad "attestation $i of the token loop"; break; }; done
expect "65 attestations later the first token is dropped" denied "$(tag data "$A3" "$B" "$tmp/tok4")"
expect "the newest token still works" stored "$(tag data "$A3" "$B" "$tmp/tok-loop")"

# --- a repeat of a swap that happened (its answer was lost) ---
n_before=$(wc -l <"$audit")
expect "the same swap again: 200 with the tag" stored "$(tag data "$A3" "$B" "$tmp/tok-loop")"
expect "the repeat is not audited" "$n_before" "$(wc -l <"$audit")"
resp=$(raw "/v1/volumes/$S/data/tag" "{\"token\":\"$(awk '$1 == "data" {print $2}' "$tmp/tok-loop")\",\"previous\":\"$A3\",\"tag\":\"$B\"}")
expect "raw: the repeat answers exactly the tag" "200 $B " "$resp"
expect "the repeat changed nothing: previous A3 to C is a rollback" rollback "$(tag data "$A3" "$C" "$tmp/tok-loop")"
expect "a repeat still needs a good token" denied "$(tag data "$A3" "$B" --token-b64 "$wrong")"
out=$(attest "$tmp/tok6")
expect "after the repeat CAS holds B" "$B" "$(field "$out" data tag)"

# --- nothing secret in the logs ---
key_b64=$(python3 -c "import base64; print(base64.b64encode(bytes.fromhex('$CODE_KEY')).decode())")
if grep -qi -e "$CODE_KEY" -e "$key_b64" -e "$tokb64" "$audit" "$tmp"/cas.out* 2>/dev/null; then
  bad "a key or token appears in the audit log or CAS's output"
else
  ok "no key or token in the audit log or CAS's output"
fi
v=$("$helper" audit-verify "$audit")
[[ $v == ok* ]] && ok "audit chain verifies ($v)" || bad "audit chain: $v"

echo "passed $passes, failed $fails"
[[ $fails -eq 0 ]]
