#!/usr/bin/env bash
# mem_run.sh [BUILD]: what the memory shield costs, protected against native
# in the same run (make bench calls it after bench/run.sh's figures).
#
# Workloads, each run natively and under arca, alternately, ARCA_BENCH_MEM_RUNS
# times (default 5), medians printed:
#   malloc  arca-bench-malloc (4 threads, mixed sizes, cross-thread frees)
#   cpu     Debian's /usr/bin/python3 with bench/workloads/cpu.py
#   sqlite  the sqlite3 shell with bench/workloads/sqlite.sql on a new file
#   redis   redis-server serving redis-benchmark -t set,get -n 100000 -q
# and start-up: `python3 -c pass` and /bin/true under arca against native,
# ARCA_BENCH_MEM_STARTUP_RUNS times (default 15), added milliseconds.
#
# Where each figure comes from: native runs are children of
# arca-bench-rusage (wall time, peak RSS and faults from wait4). A protected
# program is a child of arca-las, not of `arca run`, so only the wall time
# is taken around `arca run`; peak RSS and faults come from the shield's own
# `arca run --report` line. Work times that the programs print themselves
# (malloc, cpu) leave out start-up, which the start-up rows show apart.
# Prints figures and the goals of the memory-shield issue beside them;
# nothing here asserts a timing. A workload that fails under arca is shown
# as FAILED with its error output.
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
export ARCA_BUILD=$(cd "${1:-$src/build}" && pwd)
. "$src/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
ru=$ARCA_BUILD/bin/arca-bench-rusage
mallocb=$ARCA_BUILD/bin/arca-bench-malloc
py=/usr/bin/python3
runs=${ARCA_BENCH_MEM_RUNS:-5}
sruns=${ARCA_BENCH_MEM_STARTUP_RUNS:-15}
redis_n=${ARCA_BENCH_MEM_REDIS_N:-100000}

echo "== memory shield: protected against native, median of $runs runs ($sruns for start-up)"
missing=
for b in "$arca" "$ru" "$mallocb" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$py" \
  /usr/bin/sqlite3 /usr/bin/redis-server /usr/bin/redis-benchmark /usr/bin/redis-cli; do
  [[ -x $b ]] || missing+=" $b"
done
if [[ -n $missing ]]; then
  echo "skipped: missing$missing (build arca; scripts/deps.sh installs sqlite3, redis-server, redis-tools)"
  exit 0
fi

tmp=$(mktemp -d /tmp/arca-mem-bench.XXXXXX)
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
REDIS_PID=
cleanup() {
  if [[ -n $REDIS_PID ]]; then arca_stop_pid "$REDIS_PID"; fi
  arca_stop_all
  rm -rf "$tmp"
}
trap cleanup EXIT

las_rc=0
arca_start_las "$tmp" || las_rc=$?
if [[ $las_rc -ne 0 ]]; then echo "skipped: arca-las cannot run here (see above)"; exit 0; fi
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1

measure() { "$arca" measure -- "$1" | awk '/^measurement/ {print $2}'; }
port_native=$(arca_free_port)
port_arca=$(arca_free_port)
while [[ $port_arca == "$port_native" ]]; do port_arca=$(arca_free_port); done
redis_args=(--save "" --appendonly no --bind 127.0.0.1 --protected-mode no)
cat >"$tmp/mem-bench.yaml" <<YAML
name: mem-bench
services:
  - name: malloc
    command: ["$mallocb", --threads, "4"]
    measurement: "$(measure "$mallocb")"
    platform: {sim: {}}
  - name: cpu
    command: ["$py", "$src/bench/workloads/cpu.py"]
    measurement: "$(measure "$py")"
    platform: {sim: {}}
  - name: pass
    command: ["$py", -c, pass]
    measurement: "$(measure "$py")"
    platform: {sim: {}}
  - name: "true"
    command: [/bin/true]
    measurement: "$(measure /bin/true)"
    platform: {sim: {}}
  - name: sqlite
    command: [/usr/bin/sqlite3, "$tmp/arca.db"]
    measurement: "$(measure /usr/bin/sqlite3)"
    platform: {sim: {}}
  - name: redis
    command: [/usr/bin/redis-server, --port, "$port_arca", --save, "", --appendonly, "no", --bind, 127.0.0.1, --protected-mode, "no"]
    measurement: "$(measure /usr/bin/redis-server)"
    platform: {sim: {}}
$(arca_host_tolerate)
YAML
"$arca" session create "$tmp/mem-bench.yaml" >"$tmp/create.out" 2>&1 || { cat "$tmp/create.out"; exit 1; }

report=()
usage=$("$arca" run 2>&1)   # not piped into grep -q: with pipefail, SIGPIPE would count as "no"
[[ $usage == *--report* ]] && report=(--report)
[[ ${#report[@]} -eq 1 ]] || echo "note: this arca run has no --report: protected peak RSS and faults are n/a"

rec=$tmp/records.tsv   # workload  mode  metric  value
: >"$rec"
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$rec"; }
fail_once() {  # fail_once WORKLOAD MODE FILE...: the error output, once per workload and mode
  local w=$1 m=$2; shift 2
  record "$w" "$m" failed 1
  [[ -e $tmp/failed.$w.$m ]] && return 0
  : >"$tmp/failed.$w.$m"
  echo "FAILED: $w ($m):"
  cat "$@" 2>/dev/null | head -n 30 | sed 's/^/    | /'
}
# from_rusage W MODE FILE: wall time (and for native, memory and faults).
from_rusage() {
  local w=$1 m=$2 line
  line=$(<"$3")
  record "$w" "$m" wall_ms "$(sed -n 's/.*wall_ms=\([0-9.]*\).*/\1/p' <<<"$line")"
  [[ $m == native ]] || return 0
  record "$w" "$m" maxrss_kib "$(sed -n 's/.*maxrss_kib=\([0-9]*\).*/\1/p' <<<"$line")"
  record "$w" "$m" minflt "$(sed -n 's/.*minflt=\([0-9]*\).*/\1/p' <<<"$line")"
  record "$w" "$m" majflt "$(sed -n 's/.*majflt=\([0-9]*\).*/\1/p' <<<"$line")"
}
# from_report W FILE: the shield's coverage line of a protected run.
from_report() {
  local w=$1 line k
  line=$(grep -m1 '^arca: report: ' "$2") || return 0
  for k in maxrss_kib minflt majflt percent; do
    record "$w" arca "$k" "$(sed -n "s/.* $k=\([0-9.]*\).*/\1/p" <<<"$line")"
  done
}
# one W MODE STDIN -- CMD...: one run; CMD's stdout in $tmp/out.
one() {
  local w=$1 m=$2 in=$3; shift 4
  "$ru" -o "$tmp/ru" -- "$@" <"$in" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [[ $rc -ne 0 ]]; then fail_once "$w" "$m" "$tmp/out" "$tmp/err"; return 1; fi
  from_rusage "$w" "$m" "$tmp/ru"
  [[ $m == arca ]] && from_report "$w" "$tmp/err"
  return 0
}
protected() {  # protected SERVICE PROG: the arca run command line
  printf '%s\n' "$arca" run "${report[@]}" --session mem-bench --service "$1" -- "$2"
}
# checksum W MODE REGEX: the result line must be the same in every run.
checksum() {
  local got
  got=$(grep -Eo "$3" "$tmp/out" | head -n1)
  if [[ -z $got ]]; then fail_once "$1" "$2" "$tmp/out" "$tmp/err"; return; fi
  if [[ ! -e $tmp/sum.$1 ]]; then printf '%s' "$got" >"$tmp/sum.$1"
  elif [[ $(<"$tmp/sum.$1") != "$got" ]]; then
    echo "FAILED: $1 ($2): result differs from the first run: '$got' vs '$(<"$tmp/sum.$1")'"
    record "$1" "$2" failed 1
  fi
}

mapfile -t p_malloc < <(protected malloc "$mallocb")
mapfile -t p_cpu < <(protected cpu "$py")
mapfile -t p_sqlite < <(protected sqlite /usr/bin/sqlite3)
for ((r = 1; r <= runs; r++)); do
  for m in native arca; do
    if [[ $m == native ]]; then cmd=("$mallocb" --threads 4); else cmd=("${p_malloc[@]}"); fi
    if one malloc "$m" /dev/null -- "${cmd[@]}"; then
      record malloc "$m" work_ms "$(sed -n 's/.*wall_ms=\([0-9.]*\).*/\1/p' "$tmp/out")"
      checksum malloc "$m" 'checksum=[0-9]+'
    fi
    if [[ $m == native ]]; then cmd=("$py" "$src/bench/workloads/cpu.py"); else cmd=("${p_cpu[@]}"); fi
    if one cpu "$m" /dev/null -- "${cmd[@]}"; then
      record cpu "$m" work_ms "$(sed -n 's/.*work_ms=\([0-9.]*\).*/\1/p' "$tmp/out")"
      checksum cpu "$m" 'checksum=[0-9a-f]+'
    fi
    rm -f "$tmp/native.db" "$tmp/arca.db"
    if [[ $m == native ]]; then cmd=(/usr/bin/sqlite3 "$tmp/native.db"); else cmd=("${p_sqlite[@]}"); fi
    if one sqlite "$m" "$src/bench/workloads/sqlite.sql" -- "${cmd[@]}"; then
      record sqlite "$m" work_ms "$(awk '/^Run Time: real/ { s += $4 } END { printf "%.1f", s * 1000 }' "$tmp/out")"
      checksum sqlite "$m" '^checksum\|.*'
    fi
  done
done

# redis: a fresh server per run, so that each peak RSS is that run's.
wait_pong() {
  local i
  for ((i = 0; i < 200; i++)); do
    [[ $(/usr/bin/redis-cli -p "$1" ping 2>/dev/null) == PONG ]] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
redis_once() {  # redis_once MODE
  local m=$1 port
  if [[ $m == native ]]; then
    port=$port_native
    "$ru" -o "$tmp/ru" -- /usr/bin/redis-server --port "$port" "${redis_args[@]}" >"$tmp/rs.out" 2>"$tmp/rs.err" &
  else
    port=$port_arca
    mapfile -t cmd < <(protected redis /usr/bin/redis-server)
    "$ru" -o "$tmp/ru" -- "${cmd[@]}" >"$tmp/rs.out" 2>"$tmp/rs.err" &
  fi
  REDIS_PID=$!
  if ! wait_pong "$port" "$REDIS_PID"; then
    fail_once redis "$m" "$tmp/rs.out" "$tmp/rs.err"; arca_stop_pid "$REDIS_PID"; REDIS_PID=; return
  fi
  /usr/bin/redis-benchmark -p "$port" -t set,get -n "$redis_n" -q 2>&1 | tr '\r' '\n' >"$tmp/rb.out"
  local set get
  set=$(sed -n 's/^SET: \([0-9.]*\) requests per second.*/\1/p' "$tmp/rb.out")
  get=$(sed -n 's/^GET: \([0-9.]*\) requests per second.*/\1/p' "$tmp/rb.out")
  /usr/bin/redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
  local i
  for ((i = 0; i < 200; i++)); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$REDIS_PID" 2>/dev/null && arca_stop_pid "$REDIS_PID"
  wait "$REDIS_PID"; local rc=$?
  REDIS_PID=
  if [[ -z $set || -z $get || $rc -ne 0 ]]; then
    fail_once redis "$m" "$tmp/rb.out" "$tmp/rs.out" "$tmp/rs.err"; return
  fi
  record redis "$m" set_rps "$set"
  record redis "$m" get_rps "$get"
  from_rusage redis "$m" "$tmp/ru"
  [[ $m == arca ]] && from_report redis "$tmp/rs.err"
}
for ((r = 1; r <= runs; r++)); do redis_once native; redis_once arca; done

# Start-up: no --report here (reading smaps at exit is not start-up).
mapfile -t p_pass < <(printf '%s\n' "$arca" run --session mem-bench --service pass -- "$py")
mapfile -t p_true < <(printf '%s\n' "$arca" run --session mem-bench --service true -- /bin/true)
for ((r = 1; r <= sruns; r++)); do
  one pass native /dev/null -- "$py" -c pass
  one pass arca /dev/null -- "${p_pass[@]}"
  one true native /dev/null -- /bin/true
  one true arca /dev/null -- "${p_true[@]}"
done

python3 - "$rec" "${#report[@]}" <<'PY'
import collections, statistics, sys
rec, has_report = sys.argv[1], sys.argv[2] == "1"
v = collections.defaultdict(list)
failed = set()
for line in open(rec):
    w, m, k, x = line.rstrip("\n").split("\t")
    if k == "failed":
        failed.add((w, m))
    elif x:
        v[(w, m, k)].append(float(x))

def med(w, m, k):
    xs = v.get((w, m, k))
    return statistics.median(xs) if xs else None

def cell(x, fmt="{:.1f}"):
    return "n/a" if x is None else fmt.format(x)

rows = []
def row(w, label, k, goal="", fmt="{:.1f}", ratio=True):
    n, p = med(w, "native", k), med(w, "arca", k)
    if (w, "arca") in failed and p is None:
        ps = "FAILED"
    else:
        ps = cell(p, fmt)
    r = f"{p / n:.2f}x" if ratio and n and p is not None else ""
    rows.append((w, label, cell(n, fmt), ps, r, goal))

def secret_row(w):
    p = med(w, "arca", "percent")
    if p is not None:
        rows.append((w, "secret memory %", "", f"{p:.1f}", "", ">= 95 (report)"))

def mem_rows(w):
    row(w, "peak RSS KiB", "maxrss_kib", "<= 1.10x", "{:.0f}")
    row(w, "minor faults", "minflt", "", "{:.0f}")
    row(w, "major faults", "majflt", "", "{:.0f}", ratio=False)
    secret_row(w)

row("malloc", "work ms (4 threads)", "work_ms", "<= 1.25x")
mem_rows("malloc")
row("cpu", "work ms (python3)", "work_ms", "<= 1.25x")
row("cpu", "wall ms, with start", "wall_ms", "")
mem_rows("cpu")
row("sqlite", "work ms (sum of .timer)", "work_ms", "<= 1.25x")
row("sqlite", "wall ms, with start", "wall_ms", "")
mem_rows("sqlite")
row("redis", "SET requests/s", "set_rps", ">= 0.80x", "{:.0f}")
row("redis", "GET requests/s", "get_rps", ">= 0.80x", "{:.0f}")
mem_rows("redis")
for w, label in (("pass", "python3 -c pass ms"), ("true", "/bin/true ms")):
    n, p = med(w, "native", "wall_ms"), med(w, "arca", "wall_ms")
    ps = "FAILED" if (w, "arca") in failed and p is None else cell(p, "{:.1f}")
    added = f"+{p - n:.1f} ms" if n is not None and p is not None else ""
    goal = "<= +30 ms" if w == "pass" else "(attestation + shield set-up)"
    rows.append(("start-up", label, cell(n), ps, added, goal))

hdr = ("workload", "metric", "native", "protected", "ratio", "goal")
wid = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(6)]
fmt = "  ".join(("{:<%d}" if i < 2 or i == 5 else "{:>%d}") % wid[i] for i in range(6))
print(fmt.format(*hdr).rstrip())
last = None
for r in rows:
    r = list(r)
    if r[0] == last:
        r[0] = ""
    else:
        last = r[0]
    print(fmt.format(*r).rstrip())
print("sources: native figures from wait4 (arca-bench-rusage); protected wall time around `arca run`,")
print("protected peak RSS and faults from the shield's `arca run --report` line" +
      ("" if has_report else " (not available in this build: n/a)") + ";")
print("work ms as printed by the program itself (start-up excluded); ratio = protected / native.")
if failed:
    print("failed under arca or natively: " + ", ".join(f"{w} ({m})" for w, m in sorted(failed)))
PY
