"""The dashboard started as a user starts it (`streamlit run app/dashboard.py`)
on a free local port, for the tests and the screenshot script that drive it:
wait for /_stcore/health, always stop the server."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url):
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read() == b"ok"
    except OSError:
        return False


@contextmanager
def dashboard_server(options, log_path, runs=None):
    """Yields (url, port) of the dashboard started with streamlit's `options`
    (besides the port) and, where given, AINNOSEG_RUNS=`runs`; its output goes
    to `log_path`, whose tail a server that does not start raises with."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "dashboard.py"),
               f"--server.port={port}", "--server.headless=true",
               "--server.fileWatcherType=none", *options]
    env = {**os.environ, "AINNOSEG_RUNS": str(runs)} if runs is not None else None
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the dashboard did not start:\n{Path(log_path).read_text()[-3000:]}")
            time.sleep(0.3)
        yield url, port
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
