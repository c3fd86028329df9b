#!/usr/bin/env bash
# make test-services: start PostgreSQL + mlflow server, run tests_optin/test_services.py, stop them.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export CEL_SERVICES_DIR=${CEL_SERVICES_DIR:-/tmp/cel-services}
export CEL_OPTIN_OUT=${CEL_OPTIN_OUT:-results/optin}
trap 'bash scripts/services/stop.sh' EXIT
bash scripts/services/start.sh || exit 1
source "$CEL_SERVICES_DIR/env.sh"
$PY -m pytest -q -s -p no:cacheprovider tests_optin/test_services.py "$@"
