"""A real PostgreSQL cluster for tests: initdb and pg_ctl in a temporary folder."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port

_BIN = Path("/usr/lib/postgresql")


def pg_bin() -> Path | None:
    """The folder of initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(_BIN.glob("*/bin/initdb")) if _BIN.exists() else []
    return versions[-1].parent if versions else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Run PostgreSQL on a free loopback port; yield its SQLAlchemy URL.

    As root the server runs as the ``postgres`` user (it refuses root), in a folder of its
    own under the system's temporary folder (pytest's are closed to other users).
    """
    binaries = pg_bin()
    assert binaries is not None, "PostgreSQL is not installed (apt-get install postgresql)"
    with tempfile.TemporaryDirectory(prefix="ragent-pg-") as name:
        yield from _serve(binaries, Path(name))


def _serve(binaries: Path, folder: Path) -> Iterator[str]:
    data, sockets = folder / "data", folder / "sockets"
    data.mkdir(parents=True)
    sockets.mkdir()
    as_user: Callable[[], None] | None = None
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (folder, data, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)

        def as_user() -> None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

    def run(*args: str) -> None:
        done = subprocess.run(
            args, capture_output=True, text=True, preexec_fn=as_user, cwd=folder, timeout=120
        )
        assert done.returncode == 0, f"{args[0]} failed: {done.stderr[-2000:]}"

    port = free_port()
    run(str(binaries / "initdb"), "-D", str(data), "-U", "ragent", "--auth=trust", "-E", "UTF8")
    run(
        str(binaries / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-t",
        "60",
        "-l",
        str(folder / "server.log"),
        "-o",
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off",
        "start",
    )
    try:
        yield f"postgresql+psycopg://ragent@127.0.0.1:{port}/postgres"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
