"""An installed wheel runs from any directory: its settings profiles ship inside it.

The wheel is built once from a copy of the source, installed into a fresh virtual
environment with ``--no-deps`` (its dependencies come from this one's site-packages,
after its own), and run from a directory outside the repository, with no
``RAGENT_CONFIG_DIR``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.e2e.conftest import QUESTION, Corpus, fresh_data_dir
from tests.servers import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh venv holding only the built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source)
    shutil.copytree(REPO / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist")]
    subprocess.run([*build, str(source)], check=True, timeout=300, cwd=root)
    wheel = next((root / "dist").glob("ragent-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [*pip, "--python", str(python), "install", "--no-deps", str(wheel)]
    subprocess.run(install, check=True, timeout=300, cwd=root)
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # After the wheel's own site-packages: this venv's, for the dependencies only.
    (Path(own) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv / "bin"


def _run(
    bin_dir: Path, *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "ragent"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), **env},
    )


def test_version_is_the_installed_distributions(installed: Path, tmp_path: Path) -> None:
    result = _run(installed, "--version", cwd=tmp_path, env={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ragent 0.1.0"


def test_ask_starts_outside_the_repository(installed: Path, corpus: Corpus, tmp_path: Path) -> None:
    data_dir = fresh_data_dir(corpus, tmp_path)
    probe = subprocess.run(
        [str(installed / "python"), "-c", "import app, app.settings as s; print(s.CONFIG_DIR)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert not probe.stdout.strip().startswith(str(REPO)), probe.stdout  # the wheel's own copy
    result = _run(
        installed, "ask", QUESTION, "--json", cwd=tmp_path, env={"RAGENT_DATA_DIR": str(data_dir)}
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert "1000 pages" in payload["answer"], payload
