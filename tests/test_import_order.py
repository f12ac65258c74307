"""Every package imports on its own, first, in a fresh interpreter.

``import sessionflow`` loads its names lazily (for the command line's start), so no
package import order hides a cycle any more: ``import sessionflow.portfolio`` as a
notebook's first line once failed on the portfolio and the ExecutionManager importing
each other. Each module is imported with every other sessionflow module forgotten
(compiled kernels aside: an extension module is loaded once per process).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sessionflow

SCRIPT = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "sessionflow"]:
        if not str(getattr(sys.modules[loaded], "__file__", "")).endswith(".so"):
            del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
"""


def _modules() -> list[str]:
    """The packages and the package's top-level modules (where a cycle shows first; every
    module of them all would take half a minute)."""
    root = Path(sessionflow.__file__).parent
    names = ["sessionflow"]
    for path in sorted(root.iterdir()):
        if path.is_dir() and (path / "__init__.py").exists():
            names.append(f"sessionflow.{path.name}")
            names += [f"sessionflow.{path.name}.{p.name}" for p in sorted(path.iterdir())
                      if (p / "__init__.py").exists()]  # fmt: skip
        elif path.suffix == ".py" and not path.name.startswith("_"):
            names.append(f"sessionflow.{path.stem}")
    return names


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    names = _modules()
    assert "sessionflow.portfolio" in names and "sessionflow.data_manager" in names
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *names], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
