#!/usr/bin/env bash
# Rejects the functions banned by the house style (../shared/style.md rule 2).
set -uo pipefail
cd "$(dirname "$0")/.."
pattern='\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets)[[:space:]]*\('
hits=$(grep -rnE "$pattern" --include='*.c' --include='*.h' lib las cas cli shield include tests bench examples 2>/dev/null)
if [[ -n "$hits" ]]; then
  echo "lint: banned functions (use the bounded alternatives in include/arca/buf.h):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "lint: no banned functions"
