#!/usr/bin/env bash
# Zips each built bootstrap (target/lambda/<name>/bootstrap.zip, as Lambda receives it) and
# prints its size; fails when one exceeds the 6 MiB budget we hold the functions to, since
# cold starts grow with the package and a direct upload must stay small.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/.venv/bin/python" - "${CARGO_TARGET_DIR:-$root/target}/lambda" "$@" <<'PY'
import os, sys, zipfile

lambda_dir, names = sys.argv[1], sys.argv[2:]
budget = 6 * 1024 * 1024
over = []
for name in names:
    bootstrap = os.path.join(lambda_dir, name, "bootstrap")
    archive = bootstrap + ".zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        info = zipfile.ZipInfo.from_file(bootstrap, "bootstrap")
        with open(bootstrap, "rb") as f:
            z.writestr(info, f.read(), zipfile.ZIP_DEFLATED, 9)
    size = os.path.getsize(archive)
    print(f"{name:14} bootstrap {os.path.getsize(bootstrap):>10} bytes, zipped {size:>9} bytes")
    if size > budget:
        over.append(name)
if over:
    sys.exit(f"over the {budget}-byte budget: {', '.join(over)}")
PY
