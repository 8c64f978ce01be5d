#!/usr/bin/env bash
# Builds the Lambda functions for deploy/template.yaml:
#
#   deploy/build.sh && (cd deploy && sam deploy --guided)
#
# 1. `sam build` (in deploy/: samconfig.toml gives it requirements.txt as the manifest);
# 2. compiles the bytecode into the build: Lambda's /var/task is read-only, so without .pyc
#    files every cold start compiles what it imports (measured: 7.5-11 s of imports instead
#    of 2-4 s);
# 3. checks each function against Lambda's 250 MB limit (unzipped).
# Arguments go to `sam build` (e.g. --use-container on a machine that is not Linux x86_64).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PY=$(command -v python3.12) || {
  echo "deploy/build.sh: python3.12 is needed (the functions' runtime; sam build needs it too)" >&2
  exit 1
}
sam build "$@"
"$PY" -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build >/dev/null
for dir in .aws-sam/build/*/; do
  size=$(du -sm --apparent-size "$dir" | cut -f1)
  echo "deploy/build.sh: ${dir} ${size} MB (Lambda's limit: 250 MB unzipped)"
  if ((size >= 250)); then
    echo "deploy/build.sh: ${dir} is too large for a zip function" >&2
    exit 1
  fi
done
