"""`distillguard console`: the console alone against a data directory, as a process of its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.support.processes import BIN, cli, free_port, wait_ready


def test_the_console_command_serves_a_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "dg"
    token = next(
        w
        for w in cli("admin", "token", "create", "--name", "carol", data_dir=data).stdout.split()
        if w.startswith("dg-")
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "console", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/console/login", proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/").headers["location"] == "/console/"
            login = client.get("/console/login")
            csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
            signed_in = client.post("/console/login", data={"token": token, "csrf": csrf}, follow_redirects=True)
            assert signed_in.status_code == 200 and "Signed in as" in signed_in.text and "carol" in signed_in.text
    finally:
        proc.terminate()
        proc.wait(20)  # stops on SIGTERM (uvicorn shuts down, then re-raises the signal)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert f"console on http://127.0.0.1:{port}/console/" in stderr
    assert token not in stderr  # the token is never logged


def test_a_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[console]\npath = "no-slash"\n')
    result = cli("console", "--config", str(config), data_dir=tmp_path, check=False)
    assert result.returncode == 2
    assert "console.path" in result.stderr and "Traceback" not in result.stderr
