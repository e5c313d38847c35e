#!/usr/bin/env bash
# Install into .venv and run every check: ruff, mypy, pytest with coverage. The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q ".[dev]"  # not editable: mypy and coverage see the installed package

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy --config-file pyproject.toml -p pymonitor
echo "== pytest"
set +e
.venv/bin/python -m pytest -m "not slow" --cov --cov-report=term --cov-fail-under=90 \
  --json-report --json-report-file=report.json "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
