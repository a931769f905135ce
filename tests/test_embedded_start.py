"""The README's first command, run the way a user runs it: `python -m pushlite`
with no REDIS_URL, then the curl line it prints, for real over HTTP."""
from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
STARTUP = 20.0


def read_lines(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)
    stream.close()


def wait_for_banner(lines: queue.Queue, output: list[str], deadline: float) -> dict[str, str]:
    """Read the process output until the admin token, instance id, secret key and curl line showed up."""
    patterns = {
        "admin_token": re.compile(r"admin token:\s*(\S+)"),
        "instance_id": re.compile(r"instance id:\s*(\S+)"),
        "secret_key": re.compile(r"secret key:\s*(\S+)"),
        "curl": re.compile(r"^\s*(curl .+)$"),
    }
    found: dict[str, str] = {}
    while len(found) < len(patterns):
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no complete banner in time:\n" + "".join(output)
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        output.append(line)
        for name, pattern in patterns.items():
            match = pattern.search(line)
            if match and name not in found:
                found[name] = match.group(1).strip()
    return found


def curl_request(command: str) -> tuple[str, str, dict[str, str], str]:
    """The method, URL, headers and body of the printed curl line."""
    args = shlex.split(command)
    assert args[0] == "curl"
    method, url, headers, data = "GET", None, {}, None
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "-X":
            method = args[i + 1]
            i += 1
        elif arg == "-H":
            name, _, value = args[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 1
        elif arg in ("-d", "--data", "--data-raw"):
            data = args[i + 1]
            method = method if method != "GET" else "POST"
            i += 1
        elif not arg.startswith("-"):
            url = arg
        i += 1
    assert url, command
    return method, url, headers, data


def request_until_up(method: str, url: str, deadline: float, **kwargs) -> requests.Response:
    """The banner is printed just before the server binds: retry refused connections briefly."""
    while True:
        try:
            return requests.request(method, url, timeout=5, **kwargs)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_python_m_pushlite_runs_embedded():
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "PUSHLITE_QUEUE_URL", "PUSHLITE_ADMIN_TOKEN", "FLASK_APP")}
    env["PORT"] = str(port)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "pushlite"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + STARTUP
        banner = wait_for_banner(lines, output, deadline)
        assert process.poll() is None, "".join(output)

        method, url, headers, data = curl_request(banner["curl"])
        assert url.startswith(f"http://127.0.0.1:{port}/")
        assert banner["instance_id"] in url
        registered = request_until_up(method, url, deadline, headers=headers, data=data)
        assert registered.status_code == 200, registered.text
        device_id = registered.json()["id"]
        assert device_id

        base = f"http://127.0.0.1:{port}"
        listed = requests.get(f"{base}/admin/v1/instances",
                              headers={"Authorization": f"Bearer {banner['admin_token']}"}, timeout=5)
        assert listed.status_code == 200, listed.text
        demo = [i for i in listed.json() if i["name"] == "demo"]
        assert [i["id"] for i in demo] == [banner["instance_id"]]
        assert banner["secret_key"] not in listed.text

        refused = requests.get(f"{base}/admin/v1/instances", headers={"Authorization": "Bearer wrong"}, timeout=5)
        assert refused.status_code == 401

        device = requests.get(f"{url}/{device_id}", timeout=5)
        assert device.status_code == 200 and device.json()["id"] == device_id
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        assert requests.get(f"{base}/docs", timeout=5).status_code == 200
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
