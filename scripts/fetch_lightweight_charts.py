"""Re-fetch the pinned lightweight-charts bundle from the npm registry and verify it.

The dashboard ships TradingView's standalone production bundle inside the package
(src/sessionflow/web/static/vendor/lightweight-charts/), so it runs offline. PIN.json
beside it names the version, the tarball and its sha512 integrity as the registry
publishes it, and the sha256 of each file taken from the tarball. This script:

  1. reads the registry's metadata for that version and checks it still states the
     pinned tarball and integrity;
  2. downloads the tarball and checks its sha512 against that integrity;
  3. extracts the bundle and its LICENSE and checks their sha256 against PIN.json;
  4. writes them (only with --write; otherwise it just verifies).

`--check` verifies the committed files against PIN.json without the network.
To move to another version: edit version/tarball/integrity in PIN.json, run with
--write --update-hashes, review the diff, run the web tests.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

VENDOR = (
    Path(__file__).resolve().parents[1] / "src/sessionflow/web/static/vendor/lightweight-charts"
)
PIN = VENDOR / "PIN.json"
REGISTRY = "https://registry.npmjs.org"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as resp:
        data: bytes = resp.read()
        return data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_committed(pin: dict[str, Any]) -> list[str]:
    """Files whose sha256 differs from PIN.json (empty: all good)."""
    bad = []
    for name, spec in pin["files"].items():
        path = VENDOR / name
        if not path.exists() or _sha256(path.read_bytes()) != spec["sha256"]:
            bad.append(name)
    return bad


def fetch(pin: dict[str, Any], write: bool, update_hashes: bool) -> None:
    meta = json.loads(_get(f"{REGISTRY}/{pin['package']}/{pin['version']}"))
    dist = meta["dist"]
    if dist["tarball"] != pin["tarball"] or dist["integrity"] != pin["integrity"]:
        sys.exit(f"error: the registry states {dist['tarball']} {dist['integrity']}, not the pin")
    tarball = _get(pin["tarball"])
    algo, _, digest = pin["integrity"].partition("-")
    if algo != "sha512":
        sys.exit(f"error: integrity {algo!r}: only sha512 is accepted")
    got = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if got != digest:
        sys.exit(f"error: tarball sha512 {got} does not match the pinned integrity")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for name, spec in pin["files"].items():
            member = tar.extractfile(spec["from"])
            if member is None:
                sys.exit(f"error: {spec['from']} is not in the tarball")
            data = member.read()
            if update_hashes:
                spec["sha256"] = _sha256(data)
            elif _sha256(data) != spec["sha256"]:
                sys.exit(f"error: {spec['from']} sha256 {_sha256(data)} differs from PIN.json")
            if write:
                (VENDOR / name).write_bytes(data)
                print(f"wrote {VENDOR / name} ({len(data):,} bytes)")
    if update_hashes and write:
        PIN.write_text(json.dumps(pin, indent=2) + "\n", encoding="utf-8")
    print(f"{pin['package']}@{pin['version']}: registry integrity and file hashes verified")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify committed files, offline")
    parser.add_argument("--write", action="store_true", help="write the verified files")
    parser.add_argument("--update-hashes", action="store_true", help="take new sha256s")
    args = parser.parse_args()
    pin = json.loads(PIN.read_text(encoding="utf-8"))
    if args.check:
        bad = check_committed(pin)
        if bad:
            sys.exit(f"error: differ from PIN.json: {', '.join(bad)}")
        print(f"{pin['package']}@{pin['version']}: committed files match PIN.json")
        return
    fetch(pin, args.write, args.update_hashes)


if __name__ == "__main__":
    main()
