"""docs/live.md names a test for each documented server behaviour; each named test exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_docs_live_names_exists() -> None:
    text = (ROOT / "docs" / "live.md").read_text()
    table = text[text.index("## Documented server behaviour") : text.index("## Latency")]
    named = 0
    for row in (line for line in table.splitlines() if line.startswith("| ")):
        file = None
        for ref in re.findall(r"`([a-z_]*\.py)?(?:::(test_[a-z0-9_]+))?`", row):
            file = ref[0] or file
            if not file:
                continue
            source = (ROOT / "tests" / file).read_text()
            if ref[1]:
                assert f"def {ref[1]}(" in source, f"{file}::{ref[1]} in docs/live.md"
                named += 1
    assert named >= 35
