#!/usr/bin/env bash
# Create benchmarks/.venv-peers: an isolated virtualenv holding the peer engines
# (backtrader, NautilusTrader) next to sessionflow itself (editable install of this
# checkout), so every engine in benchmarks/compare.py runs on the same interpreter.
# None of these are project dependencies. Skips the install when it is already done;
# `--force` reinstalls. PY=python3.11 picks the interpreter (default python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv-peers"
stamp="$venv/.installed"
py="${PY:-python3}"
if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$stamp" -nt "$here/setup_peers.sh" ] \
    && [ "$stamp" -nt "$root/pyproject.toml" ]; then
    echo "benchmarks/.venv-peers is up to date (--force to reinstall)"
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q numpy pandas pyarrow backtrader 'nautilus_trader==1.221.0'
"$venv/bin/python" -m pip install -q -e "$root"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("sessionflow", "numpy", "pandas", "pyarrow", "backtrader", "nautilus_trader"):
    print(f"{name}=={md.version(name)}")
PY
touch "$stamp"
