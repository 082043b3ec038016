"""The import contracts of pyproject.toml catch an import that runs uphill.

``lint-imports`` (run by scripts/test.sh) passing says nothing unless the contracts can
fail: this plants one upward import in a copy of ``app`` and expects every layer contract
to name it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_a_planted_upward_import_breaks_the_contracts(tmp_path: Path) -> None:
    shutil.copytree(REPO / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    clean = _lint(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    config = tmp_path / "app" / "config" / "llm.py"
    config.write_text(config.read_text(encoding="utf-8") + "\nimport app.server.app  # noqa\n")
    planted = _lint(tmp_path)
    assert planted.returncode == 1, planted.stdout
    assert "app.config.llm -> app.server.app" in planted.stdout
    assert "0 broken" not in planted.stdout
