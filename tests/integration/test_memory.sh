#!/usr/bin/env bash
# test_memory.sh: the memory shield keeps the memory semantics programs rely
# on, and puts what it promises in secret memory, with the real daemons.
#   - memtest-semantics (tests/memory/semantics.c) passes natively and under
#     arca: fork privacy of heap, globals, stacks and mmap; fork from a
#     thread while others allocate; mmap/munmap/mremap/madvise/mprotect;
#     the malloc family; threads with deep stacks, a 64 MiB stack, a stack
#     of the program's own, pthread_exit and cancellation, 1000 detached;
#   - memtest-where says every kind of memory is plain natively
#     (--expect-plain) and secret under arca (--expect-secret);
#   - fork-heavy programs keep working under arca: a shell loop of 200
#     commands, and Debian's python3 calling subprocess.run in a loop, from
#     threads too.
set -uo pipefail
: "${ARCA_BUILD:?}" "${ARCA_SRC:?}"
. "$ARCA_SRC/scripts/daemons.sh"
arca=$ARCA_BUILD/bin/arca
sem=$ARCA_BUILD/bin/memtest-semantics
where=$ARCA_BUILD/bin/memtest-where
for b in "$arca" "$sem" "$where" "$ARCA_BUILD/bin/arca-las" "$ARCA_BUILD/bin/arca-cas" "$ARCA_BUILD/lib/libarca-shield.so"; do
  [[ -e $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
py=/usr/bin/python3   # Debian's, not whatever python3 comes first on PATH
[[ -x $py ]] || { echo "SKIP: $py is needed"; exit 77; }
py_bin=$(readlink -f "$py")
sh_bin=$(readlink -f /bin/sh)

tmp=$(mktemp -d /tmp/arca-memory.XXXXXX)
chmod 755 "$tmp"
export ARCA_HOME=$tmp/home
cleanup() { arca_stop_all; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0 passes=0
ok()  { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
# show FILE: the lines worth reading of a failed run's output.
show() { grep -v '^ok ' "$1" | head -n 40 | sed 's/^/    /'; }

# --- natively ---
timeout 300 "$sem" >"$tmp/native-sem.out" 2>&1; rc=$?
if [[ $rc -eq 0 ]]; then ok "memtest-semantics natively: $(tail -n 1 "$tmp/native-sem.out")"; else
  bad "memtest-semantics natively exits $rc:"; show "$tmp/native-sem.out"; fi
timeout 60 "$where" --expect-plain >"$tmp/native-where.out" 2>&1; rc=$?
if [[ $rc -eq 0 ]]; then ok "memtest-where --expect-plain natively"; else
  bad "memtest-where --expect-plain natively exits $rc:"; show "$tmp/native-where.out"; fi

# --- under arca ---
arca_start_las "$tmp"; rc=$?
if [[ $rc -ne 0 ]]; then
  # Not root: the native half still counts.
  echo "$passes passed, $fails failed (natively only)"
  [[ $fails -eq 0 ]] || exit 1
  exit "$rc"
fi
arca_start_cas "$tmp" --las "$ARCA_LAS" || exit 1
"$arca" identity create >/dev/null || exit 1
"$arca" cas attest "$ARCA_CAS" >/dev/null || exit 1
"$arca" cas trust-las --state "$ARCA_CAS_STATE" "$tmp/las/platform.pub" >/dev/null || exit 1

measure() { "$arca" measure -- "$1" | sed -n 's/^measurement //p'; }
m_sem=$(measure "$sem") m_where=$(measure "$where") m_py=$(measure "$py_bin") m_sh=$(measure "$sh_bin")
for m in "$m_sem" "$m_where" "$m_py" "$m_sh"; do
  [[ $m == sha256:* ]] || { echo "FAIL: arca measure"; exit 1; }
done
# Python: subprocess.run in a loop, then from a pool of threads.
pyprog='import subprocess, threading
for i in range(100):
    subprocess.run(["/bin/true"], check=True)
out = subprocess.run(["/bin/echo", "child"], check=True, capture_output=True).stdout
assert out == b"child\n", out
errors = []
def work():
    try:
        for i in range(10):
            subprocess.run(["/bin/true"], check=True)
    except Exception as e:
        errors.append(e)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
print("python subprocess ok", flush=True)'
# YAML double-quoted: backslashes and quotes escaped, newlines as \n.
pyprog_yaml=$(printf %s "$pyprog" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
cat >"$tmp/s.yaml" <<YAML
name: memory
services:
  - name: semantics
    command: ["$sem"]
    measurement: "$m_sem"
    platform: {sim: {}}
  - name: where
    command: ["$where", --expect-secret]
    measurement: "$m_where"
    platform: {sim: {}}
  - name: shell
    command: ["$sh_bin", -c, "for i in \$(seq 200); do /bin/true; done; echo done"]
    measurement: "$m_sh"
    platform: {sim: {}}
  - name: python
    command: ["$py_bin", -c, $pyprog_yaml]
    measurement: "$m_py"
    platform: {sim: {}}
$(arca_host_tolerate)
YAML
"$arca" session create "$tmp/s.yaml" >"$tmp/create.out" 2>&1 || { cat "$tmp/create.out"; exit 1; }

run() { local svc=$1 bin=$2; timeout 300 "$arca" run --session memory --service "$svc" -- "$bin"; }

run semantics "$sem" >"$tmp/sem.out" 2>&1; rc=$?
if [[ $rc -eq 0 ]]; then ok "memtest-semantics under arca: $(tail -n 1 "$tmp/sem.out")"; else
  bad "memtest-semantics under arca exits $rc:"; show "$tmp/sem.out"; fi
# Each check by name, so that a missing line (a crash) shows too.
for name in $(grep -o '^ok [a-zA-Z0-9-]*' "$tmp/native-sem.out" | cut -d' ' -f2); do
  grep -qE "^ok $name( \(.*\))?\$" "$tmp/sem.out" || bad "under arca, check $name did not pass"
done

run where "$where" >"$tmp/where.out" 2>&1; rc=$?
sed 's/^/    /' "$tmp/where.out"
if [[ $rc -eq 0 ]]; then ok "memtest-where --expect-secret under arca"; else
  bad "memtest-where --expect-secret under arca exits $rc:"; show "$tmp/where.out"; fi
grep -q '^malloc .* secret ' "$tmp/where.out" && ok "… the heap is in secret memory" || bad "no secret heap: $(head -n 1 "$tmp/where.out")"

run shell "$sh_bin" >"$tmp/sh.out" 2>&1; rc=$?
if [[ $rc -eq 0 && $(tail -n 1 "$tmp/sh.out") == done ]]; then ok "a shell loop of 200 commands under arca"; else
  bad "shell loop under arca: exit $rc:"; show "$tmp/sh.out"; fi

run python "$py_bin" >"$tmp/py.out" 2>&1; rc=$?
if [[ $rc -eq 0 ]] && grep -q 'python subprocess ok' "$tmp/py.out"; then ok "python3 subprocess.run in a loop and from threads under arca"; else
  bad "python3 under arca: exit $rc:"; show "$tmp/py.out"; fi

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
