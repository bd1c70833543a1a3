"""Java and the servers' jars: the JVM the lab needs, and Maven to fetch what runs on it.

``labkit.services`` runs Kafka and HBase on this Java, and ``labkit.flink`` the job's JVM; both
find their jars here. The jars are the published Apache artifacts, resolved by Maven from the
recipes in ``services/`` (one ``pom.xml`` per group) into ``.lab/jars/<group>``, once.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from labkit.config import PROJECT_ROOT, Settings
from labkit.errors import ServiceError

RECIPES_DIR = PROJECT_ROOT / "services"
MIN_JAVA = 17

Progress = Callable[[str], None]


INSTALL_JAVA = (
    "The lab runs Kafka and HBase on Java 17 or newer: install it (Debian/Ubuntu: "
    "`sudo apt install openjdk-17-jdk`; conda: use environment.yml) or set JAVA_HOME to a JDK 17."
)


def java_executable() -> str:
    """The ``java`` to run the servers with: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if not found:
        # A JAVA_HOME that points nowhere is the likely mistake: name it.
        wrong_home = f" (JAVA_HOME={java_home} has no bin/java)" if java_home else ""
        raise ServiceError(f"Java was not found{wrong_home}. {INSTALL_JAVA}")
    return found


def java_major_version(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    except OSError as error:  # not executable, not a program (a half-unpacked JDK)
        raise ServiceError(f"{java} does not run ({error.strerror}). {INSTALL_JAVA}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise ServiceError(f"Could not read the version of {java}: {out.stderr.strip()}")
    major = int(match.group(1))
    # Java 8 and older report themselves as 1.x.
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> str:
    java = java_executable()
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise ServiceError(
            f"{java} is Java {major}; the lab needs Java {MIN_JAVA} or newer. "
            "Install OpenJDK 17 or point JAVA_HOME at one."
        )
    return java


# --------------------------------------------------------------------------------------
# Jars, resolved by Maven from services/*/pom.xml
# --------------------------------------------------------------------------------------

JAR_GROUPS = ("kafka", "hbase", "flink")


def _recipes_digest() -> str:
    digest = hashlib.sha256()
    for pom in sorted(RECIPES_DIR.glob("**/pom.xml")):
        digest.update(pom.relative_to(RECIPES_DIR).as_posix().encode())
        digest.update(pom.read_bytes())
    return digest.hexdigest()


def jars_resolved(settings: Settings) -> bool:
    stamp = settings.jars_dir / ".resolved"
    return stamp.exists() and stamp.read_text().strip() == _recipes_digest()


def ensure_jars(settings: Settings, progress: Progress = print) -> None:
    """Resolve the servers' jars with Maven, once: with the jars present this does nothing."""
    if jars_resolved(settings):
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError(
            "Maven (`mvn`) was not found; the lab uses it once to download the Kafka, HBase and "
            "Flink connector jars. Install it (Debian/Ubuntu: `sudo apt install maven`; conda: "
            "environment.yml) and try again."
        )
    check_java()
    staging = settings.home / "jars.staging"
    shutil.rmtree(staging, ignore_errors=True)
    progress("Downloading the Kafka, HBase and Flink connector jars with Maven (first run only)...")
    started = time.monotonic()
    command = [
        mvn, "-q", "-B", "-Dstyle.color=never",
        "-f", str(RECIPES_DIR / "pom.xml"),
        "dependency:copy-dependencies",
        f"-Dlabkit.jars.dir={staging}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise ServiceError(
            "Maven could not resolve the lab's jars (is Maven Central reachable?):\n"
            + last_lines(result.stdout + result.stderr, 25)
        )
    settings.jars_dir.mkdir(parents=True, exist_ok=True)
    for group in JAR_GROUPS:
        target = settings.jars_dir / group
        shutil.rmtree(target, ignore_errors=True)
        (staging / group).rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    (settings.jars_dir / ".resolved").write_text(_recipes_digest() + "\n")
    progress(f"Jars ready in {settings.jars_dir} ({time.monotonic() - started:.0f} s).")


def jar_group(settings: Settings, group: str) -> Path:
    folder = settings.jars_dir / group
    if not any(folder.glob("*.jar")):
        raise ServiceError(f"No jars in {folder}: run `labkit up` (or `make jars`) first.")
    return folder


def last_lines(text: str, lines: int) -> str:
    """The last ``lines`` lines of a process's output, for an error message."""
    return "\n".join(text.rstrip().splitlines()[-lines:])
