"""The broker's runtime jars, resolved from Maven Central once into a per-user cache."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from infra.kafka.layout import BrokerError, Progress, locked, tail

KAFKA_VERSION = "4.1.1"
POM_FILE = Path(__file__).with_name("pom.xml")

log = logging.getLogger(__name__)


def ensure_jars(lib_dir: Path | None = None, *, progress: Progress | None = None) -> Path:
    """Copy the broker's runtime jars from Maven Central into ``lib_dir`` once; later calls return at once."""
    say = progress or log.info
    lib = lib_dir or default_lib_dir()
    if _jars_present(lib):
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    with locked(lib.parent):
        if not _jars_present(lib):
            say(f"fetching Kafka {KAFKA_VERSION} jars from Maven Central into {lib}")
            _copy_dependencies(lib)
    return lib


def default_lib_dir() -> Path:
    """The per-user jar cache, shared by every checkout and by the test broker."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "nettask" / f"kafka-{KAFKA_VERSION}" / "lib"


def _jars_present(lib: Path) -> bool:
    return (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()


def _copy_dependencies(lib: Path) -> None:
    """Resolve into a side folder, then rename it: an interrupted download never looks complete."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("mvn not found: Maven is needed once to fetch the Kafka jars (apt-get install maven)")
    partial = lib.with_name(lib.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM_FILE),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0 or not _jars_present(partial):
        raise BrokerError(f"mvn could not fetch the Kafka jars (exit {result.returncode})\n{tail(result.stdout)}")
    partial.rename(lib)
