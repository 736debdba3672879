"""The Spark session of a batch analysis: local mode on this machine, or a cluster's master URL.

pyspark is optional (``pip install 'distillguard[spark]'``) and needs a Java runtime (17 or newer); without either
:func:`spark_session` raises :class:`SparkUnavailable` with what to install. A local session binds to 127.0.0.1,
has no web UI and runs its Python workers on this interpreter, so it needs no network and sees this
installation of distillguard; on a cluster the executors need distillguard[spark] installed (docs/deployment.md).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXTRA_HINT = "install the spark extra: pip install 'distillguard[spark]'"
DEFAULT_MASTER = "local[*]"
LOCAL_HOST = "127.0.0.1"
# Settings every session gets (a cluster's own defaults are kept for everything else).
BASE_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    # Plain (pickled) Python UDFs: Arrow-optimised ones need pandas, which distillguard does not install.
    "spark.sql.execution.pythonUDF.arrow.enabled": "false",
    "spark.sql.adaptive.enabled": "true",
    # The driver collects one row per account (and its profile) by design: its memory is the limit, not 1 GB.
    "spark.driver.maxResultSize": "0",
}
LOCAL_CONF: dict[str, str] = {
    "spark.driver.host": LOCAL_HOST,
    "spark.driver.bindAddress": LOCAL_HOST,
    "spark.sql.shuffle.partitions": "8",
}


class SparkUnavailable(RuntimeError):
    """pyspark or a Java runtime is missing: the message says what to install."""


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def spark_session(
    master: str = DEFAULT_MASTER, conf: Mapping[str, str] | None = None, app_name: str = "distillguard-analyze"
) -> SparkSession:
    """A Spark session for ``master`` (``local[*]``, ``local[2]``, ``spark://host:7077``, ``yarn`` …) with ``conf``
    on top of distillguard's defaults. Reuses the running session of this process if there is one."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailable(f"--engine spark needs pyspark: {EXTRA_HINT}") from exc
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise SparkUnavailable(
            "--engine spark needs a Java runtime (17 or newer) on PATH or in JAVA_HOME, "
            "e.g. apt-get install openjdk-17-jre-headless"
        )
    settings = dict(BASE_CONF)
    if is_local(master):
        # Before the JVM starts: Spark's own address lookups, and the interpreter of its Python workers.
        os.environ.setdefault("SPARK_LOCAL_IP", LOCAL_HOST)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        settings.update(LOCAL_CONF)
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def running_session() -> bool:
    """Whether this process already runs a Spark session (which ``spark_session`` would return)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return False
    return SparkSession.getActiveSession() is not None


def parse_conf(pairs: list[str]) -> dict[str, str]:
    """``key=value`` options (``--spark-conf spark.executor.memory=8g``) as a mapping."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--spark-conf takes key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
