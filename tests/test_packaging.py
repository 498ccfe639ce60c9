"""An installed copy, away from the checkout: the migrations and the local broker's files ship as
package data, so `servicescore migrate` and a local broker work without the repository.

The packages are built as a wheel would hold them (setuptools' build_py from pyproject.toml, on a
copy of the sources: offline, nothing written into the checkout) and run by the base interpreter
without site-packages processing (``-S``: no editable-install finder pointing back here), with
the test venv's site-packages after them for the dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from servicescore.dev.broker import free_port
from servicescore.storage.clickhouse import migrations

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("servicescore", "streams", "consumers", "schemas", "appraisal", "sql")
BROKER_FILES = ("pom.xml", "server.properties.template", "log4j2.xml")
KAFKA_LIB = ROOT / ".cache" / "kafka" / "lib"
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The built packages' folder (what ``pip install --target`` would fill)."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    target = work / "site"
    build = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "from setuptools import setup; setup()", "-q",
         "egg_info", "--egg-base", str(work), "build_py", "--build-lib", str(target)],
        cwd=source, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert build.returncode == 0, build.stderr
    return target


def fresh(installed: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``python -S args`` in ``tmp_path`` with only the installed copy and the dependencies."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("SERVICESCORE_") and k != "PYTHONPATH"}
    environ.update({"PYTHONPATH": os.pathsep.join([str(installed),
                                                   sysconfig.get_paths()["purelib"]]),
                    "SERVICESCORE_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run([sys._base_executable, "-S", *args], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def cli(installed: Path, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return fresh(installed, tmp_path, "-m", "servicescore.cli", *args, **env)


def test_the_installed_copy_holds_the_migrations_and_broker_files(installed, tmp_path):
    shipped = sorted(p.name for p in (installed / "sql").glob("*.sql"))
    assert shipped == sorted(p.name for p in (ROOT / "sql").glob("*.sql")) != []
    assert all((installed / "servicescore" / "dev" / "kafka" / f).is_file()
               for f in BROKER_FILES)
    where = fresh(installed, tmp_path, "-c", "import servicescore, sql; "
                  "print(servicescore.__file__); print(sql.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(Path(line).is_relative_to(installed) for line in where.stdout.splitlines())


def test_the_installed_copy_migrates_outside_the_checkout(installed, tmp_path):
    names = [m.name for m in migrations()]
    before = cli(installed, tmp_path, "kpis", "--period", "2026-11")
    assert before.returncode == 1 and before.stdout == ""
    assert before.stderr.splitlines() == [
        "servicescore: ClickHouse database servicescore does not exist: "
        "run servicescore migrate first"]

    first = cli(installed, tmp_path, "migrate")
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout == f"applied {', '.join(names)}\n"  # every migration, in order
    again = cli(installed, tmp_path, "migrate")
    assert (again.returncode, again.stdout) == (0, "schema is up to date\n")
    read = cli(installed, tmp_path, "kpis", "--period", "2026-11", "--format", "json")
    assert (read.returncode, read.stderr, read.stdout.strip()) == (0, "", "[]")


def test_an_edited_applied_migration_stops_migrate_and_the_services(installed, tmp_path):
    assert cli(installed, tmp_path, "migrate").returncode == 0
    edited = installed / "sql" / f"{migrations()[0].name}.sql"
    original = edited.read_text(encoding="utf-8")
    edited.write_text(original + "-- a later edit\n", encoding="utf-8")
    try:
        refused = cli(installed, tmp_path, "migrate")
        service = cli(installed, tmp_path, "sink", SERVICESCORE_API=f"127.0.0.1:{free_port()}",
                      SERVICESCORE_KAFKA_BOOTSTRAP="127.0.0.1:1")
    finally:
        edited.write_text(original, encoding="utf-8")
    for done in (refused, service):
        assert done.returncode == 1
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(f"servicescore: sql/{edited.name} has changed since it was "
                                   "applied to database servicescore")


BROKER_PROBE = """
import sys
from pathlib import Path
from servicescore.dev.broker import LocalKafka, free_port

broker = LocalKafka(Path(sys.argv[1]), Path(sys.argv[2]), port=free_port(), heap="256m")
print(broker.pom)
try:
    print(broker.start(timeout=90))
finally:
    broker.stop()
"""


def test_the_installed_copy_starts_a_local_broker_from_its_own_files(installed, tmp_path):
    done = fresh(installed, tmp_path, "-c", BROKER_PROBE, str(tmp_path / "kafka"),
                 str(KAFKA_LIB))
    assert done.returncode == 0, done.stderr
    pom, bootstrap = done.stdout.splitlines()
    assert Path(pom) == installed / "servicescore" / "dev" / "kafka" / "pom.xml"
    assert bootstrap.startswith("127.0.0.1:")
    config = (tmp_path / "kafka" / "server.properties").read_text(encoding="utf-8")
    assert f"PLAINTEXT://127.0.0.1:{bootstrap.split(':')[1]}" in config  # from the template
    assert (tmp_path / "kafka" / "logs" / "server.log").stat().st_size > 0  # log4j2.xml's file
