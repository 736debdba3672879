"""The build: everything is in pyproject.toml except the watermark's hot path, which is compiled with mypyc.

The modules of ``distillguard.native.COMPILED`` run for every streamed token the gateway marks (docs/watermark.md,
"Speed"); compiled, they take about half the time. Without a C compiler, or with DISTILLGUARD_PURE=1, the package
installs as plain Python and works the same, slower. ``make`` rebuilds them in place when their sources change
(``make native``); until then an edited source runs as Python (src/distillguard/native.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

from setuptools import setup

# The list lives in src/distillguard/native.py, which also picks the sources over a stale build at run time.
COMPILED = subprocess.run(
    [sys.executable, "src/distillguard/native.py"], check=True, capture_output=True, text=True
).stdout.split()


def native_modules() -> list[object]:
    if os.environ.get("DISTILLGUARD_PURE"):
        return []
    from mypyc.build import mypycify

    # No project config (its plugins need the runtime dependencies); what the compiled modules import from
    # outside them (orjson, numpy) is typed Any.
    extensions = mypycify(
        ["--config-file=", "--ignore-missing-imports", "--follow-imports=silent", *COMPILED],
        opt_level="3",
        group_name="distillguard._native",
    )
    for extension in extensions:
        extension.optional = True  # a failed compile leaves the Python modules in place
    return list(extensions)


setup(ext_modules=native_modules())
