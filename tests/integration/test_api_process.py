"""`nettask api` as a process on a free port of 127.0.0.1, queried over HTTP with and without its token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.settings import Settings
from tests.integration.helpers import wait_until
from tests.integration.test_api import store_example

NETTASK = Path(sys.executable).parent / "nettask"
TOKEN = "a-token-for-this-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path, policy_book):
    """The example month in a SQLite store and view, served by `nettask api` with a token; stopped afterwards."""
    store_example(Settings(store="sqlite", var_dir=tmp_path), policy_book)
    port = free_port()
    env = {**os.environ, "NETTASK_STORE": "sqlite", "NETTASK_VAR_DIR": str(tmp_path), "NETTASK_API_TOKEN": TOKEN}
    process = subprocess.Popen(
        [str(NETTASK), "api", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _answers(base) or process.poll() is not None, 30), "the API did not start"
        assert process.poll() is None, process.stderr.read().decode()
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(base: str) -> bool:
    try:
        status, _ = get(f"{base}/queue")
    except OSError:
        return False
    return status == 401


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_api_serves_the_view_over_http_only_with_the_token(served):
    assert get(f"{served}/tickets")[0] == 401
    assert get(f"{served}/tickets", token="not-it")[0] == 401
    status, body = get(f"{served}/tickets?customer=globex", token=TOKEN)
    assert status == 200
    assert [t["reference"] for t in json.loads(body)] == ["G-1"]
    status, body = get(f"{served}/statements?month=2026-13", token=TOKEN)
    assert status == 422 and b"month" in body
    status, body = get(f"{served}/openapi.json", token=TOKEN)
    assert status == 200 and "/tickets" in json.loads(body)["paths"]
