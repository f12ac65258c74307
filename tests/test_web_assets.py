"""The page's assets ship with the package: pinned lightweight-charts, no CDN, package data."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "src/sessionflow/web"
VENDOR = WEB / "static/vendor/lightweight-charts"


def test_committed_bundle_matches_the_pinned_hashes() -> None:
    pin = json.loads((VENDOR / "PIN.json").read_text(encoding="utf-8"))
    assert pin["version"] == "4.2.3" and pin["integrity"].startswith("sha512-")
    for name, spec in pin["files"].items():
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == spec["sha256"], name
    head = (VENDOR / "lightweight-charts.standalone.production.js").read_text()[:300]
    assert f"Lightweight Charts™ v{pin['version']}" in head
    ran = subprocess.run(
        [sys.executable, str(ROOT / "scripts/fetch_lightweight_charts.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr


def test_the_page_loads_nothing_from_another_host() -> None:
    for page in (WEB / "static").glob("*.*"):
        text = page.read_text(encoding="utf-8")
        for ref in re.findall(r'(?:src|href)="([^"]+)"', text):
            assert ref.startswith("/static/") or ref.startswith("https://www.tradingview.com/"), (
                page.name,
                ref,
            )
            if ref.startswith("/static/"):
                assert (WEB / ref.lstrip("/")).is_file(), ref


def test_every_static_file_is_package_data() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = conf["tool"]["setuptools"]["package-data"]["sessionflow.web"]
    for path in (WEB / "static").rglob("*"):
        if path.is_file():
            rel = path.relative_to(WEB).as_posix()
            assert any(
                fnmatch.fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns
            ), rel
