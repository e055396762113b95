"""A throwaway Spark Connect server on loopback for the tests.

One JVM, one catalog: every client (the test process, an Airflow task, a task
environment's Python) reaches the same tables through ``sc://127.0.0.1:PORT``, which
local Spark's per-process catalog cannot offer. It is started as a user of pip's
pyspark would start it (a Spark distribution's ``sbin/start-connect-server.sh`` runs the
same class)::

    $(python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')/bin/spark-submit \\
        --class org.apache.spark.sql.connect.service.SparkConnectServer --master 'local[2]'

with a free port, a warehouse folder of its own in a temporary directory, and is
stopped at the end of the pytest session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests._servers.postgres import _free_port

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
#: A loaded two-core machine has been seen to take 25 s from spark-submit to a listening port.
START_TIMEOUT_SEC = 180


def spark_submit() -> Path:
    """pip's pyspark ships spark-submit and the Spark Connect server's jar."""
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-submit"


def server_command(port: int, warehouse: Path, settings: Mapping[str, str], master: str = "local[2]") -> list[str]:
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        **settings,
    }
    args = [str(spark_submit()), "--class", SERVER_CLASS, "--name", "neve-test-connect", "--master", master]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return args


@contextlib.contextmanager
def running_server(settings: Mapping[str, str], master: str = "local[2]") -> Iterator[str]:
    """Start a server; yield its URL ``sc://127.0.0.1:PORT``."""
    root = Path(tempfile.mkdtemp(prefix="neve-spark-connect-"))
    port = _free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        # Its own process group: spark-submit execs the JVM, and stopping the group also
        # stops anything the launcher left behind.
        process = subprocess.Popen(
            server_command(port, root / "warehouse", settings, master),
            cwd=root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
        )
    try:
        _wait_until_ready(process, port, log)
        yield f"sc://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_ready(process: subprocess.Popen, port: int, log: Path) -> None:
    """The server listens once its session is up and its gRPC service bound."""
    import socket

    deadline = time.monotonic() + START_TIMEOUT_SEC
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark Connect server exited ({process.returncode}): {_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Spark Connect server did not listen on 127.0.0.1:{port} "
                       f"within {START_TIMEOUT_SEC} s: {_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
