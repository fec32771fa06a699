#!/usr/bin/env bash
# make bench: start-up cost of arca run against the native program, and
# attestation throughput at 1, 8 and 64 concurrent clients on loopback.
# Prints figures only; nothing here asserts a timing.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
export ARCA_BUILD=$(cd "${1:-$src/build}" && pwd)
. "$src/scripts/daemons.sh"
arca="$ARCA_BUILD/bin/arca"
demo="$ARCA_BUILD/bin/arca-demo"
runs=${ARCA_BENCH_RUNS:-40}
secs=${ARCA_BENCH_SECONDS:-5}

tmp=$(mktemp -d /tmp/arca-bench.XXXXXX)
export ARCA_HOME="$tmp/home"
trap 'arca_stop_all; rm -rf "$tmp"' EXIT

arca_start_las "$tmp"
arca_start_cas "$tmp" --las "$ARCA_LAS"
"$arca" identity create >/dev/null
"$arca" cas attest "$ARCA_CAS" >/dev/null
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null
m=$("$arca" measure -- "$demo" | awk '/^measurement/ {print $2}')
sed -e "s|@DEMO@|$demo|" -e "s|@MEASUREMENT@|$m|" "$src/examples/demo/session.yaml.in" >"$tmp/demo.yaml"
arca_host_tolerate >>"$tmp/demo.yaml"   # only on a host without Yama ptrace protection
"$arca" session create "$tmp/demo.yaml" >/dev/null

bm=$("$ARCA_BUILD/bin/arca-bench-attest" --measure)
# arca-bench-attest asks the LAS socket for evidence of itself as root
# (the path arca-cas uses), not through a launch, so its evidence is never
# ptrace-protected and never says secret memory (it is not a shielded
# program: this measures the protocol, not the memory shield): this session
# has to tolerate both on every host.
cat >"$tmp/bench.yaml" <<YAML
name: bench
services:
  - name: client
    command: [arca-bench-attest]
    measurement: "$bm"
    platform: {sim: {}}
    environment: {DB_PASSWORD: \$\$arca:pw\$\$}
secrets:
  - {name: pw, kind: ascii, size: 32}
tolerate: [no-ptrace-protection, no-secret-memory]
YAML
"$arca" session create "$tmp/bench.yaml" >/dev/null

printf 'password = native\n' >"$tmp/app.ini"
echo "== start-up: median of $runs runs, demo program (sim mode)"
python3 - "$runs" "$arca" "$demo" "$tmp/app.ini" <<'PY'
import os, statistics, subprocess, sys, time
runs, arca, demo, ini = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def med(cmd, env):
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
        t.append((time.perf_counter() - t0) * 1000)
    return statistics.median(t)
env = dict(os.environ)
native = med([demo, "--config", ini], dict(env, DB_PASSWORD="native"))
protected = med([arca, "run", "--session", "demo", "--service", "app", "--", demo], env)
print(f"native      {native:8.2f} ms")
print(f"arca run    {protected:8.2f} ms")
print(f"added       {protected - native:8.2f} ms  (ratio {protected / native:.1f}x)")
PY

export ARCA_CAS_PIN="$CAS_FPR"
echo "== attestation throughput, ${secs}s each (nonce + LAS evidence + attest + decrypt, kept-alive TLS)"
for n in 1 8 64; do
  "$ARCA_BUILD/bin/arca-bench-attest" --clients "$n" --seconds "$secs" --session bench --service client
done

# ---- hardware evidence verification (arca-bench-evidence) ----
# Real SEV-SNP, TDX and SGX evidence verified per CPU second, chain checked
# every time and cached, beside `openssl speed`'s raw ECDSA verify rate for
# the same curve measured here, in this run, on this machine.
vectors=${ARCA_VECTORS:-$src/../shared/vectors}
esecs=${ARCA_BENCH_EVIDENCE_SECONDS:-2}
if [[ ! -f $vectors/expected.json ]]; then
  echo "== hardware evidence verification: skipped, no vectors at $vectors (set ARCA_VECTORS)"
elif [[ ! -x $ARCA_BUILD/bin/arca-bench-evidence ]]; then
  echo "== hardware evidence verification: skipped, $ARCA_BUILD/bin/arca-bench-evidence is not built"
else
  p256= p384=
  if command -v openssl >/dev/null; then
    echo "== openssl speed -seconds $esecs ecdsap256 ecdsap384 ($(openssl version | cut -d' ' -f1-2))"
    speed=$(openssl speed -seconds "$esecs" ecdsap256 ecdsap384 2>/dev/null || true)
    grep -E 'verify/s|\(nistp(256|384)\)' <<<"$speed" || true
    p256=$(awk '/\(nistp256\)/ {print $NF}' <<<"$speed")
    p384=$(awk '/\(nistp384\)/ {print $NF}' <<<"$speed")
  else
    echo "== openssl speed: skipped, no openssl command (ratios print as n/a)"
  fi
  "$ARCA_BUILD/bin/arca-bench-evidence" --vectors "$vectors" --seconds "$esecs" \
    ${p256:+--p256-verify "$p256"} ${p384:+--p384-verify "$p384"}
fi

# ---- memory shield: workloads protected against native (bench/mem_run.sh) ----
bash "$src/bench/mem_run.sh" "$ARCA_BUILD"

# ---- protected volumes: file I/O against native and gocryptfs (bench/fs_run.sh) ----
bash "$src/bench/fs_run.sh" "$ARCA_BUILD"
