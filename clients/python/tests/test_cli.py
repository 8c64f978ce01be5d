"""`cis` against the running service: CliRunner in-process, a subprocess where exit and
signals matter."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud_image_client import Client
from cloud_image_client.cli.main import app
from conftest import Service, free_port, png_bytes, wait_for_variants

CIS = Path(sys.executable).with_name("cis")
NO_CONFIG: dict[str, str | None] = {
    "CIS_URL": None,
    "CIS_TOKEN": None,
    "CIS_API_KEY": None,
}


def cis(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    """Run `cis` in-process: exit code, stdout, stderr."""
    result = CliRunner().invoke(app, list(args), env=NO_CONFIG | (env or {}))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three PNGs (one in a subfolder), a text file named x.png, and files that are skipped."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for n in range(2):
        (root / f"p{n}.png").write_bytes(png_bytes(40, seed=200 + n))
    (root / "sub" / "deep.png").write_bytes(png_bytes(40, seed=202))
    (root / "x.png").write_text("text, not an image")
    (root / "notes.txt").write_text("not an image name: left out")
    (root / ".hidden" / "h.png").write_bytes(png_bytes(8, seed=203))
    return root


def test_upload_folder_then_everything_is_a_duplicate(
    service: Service, user: str, folder: Path, tmp_path: Path
) -> None:
    url = ("--url", service.url)
    code, out, err = cis(*url, "upload", str(folder), "--user", user, "--tag", "trip", "-c", "2")
    assert code == 1, err  # one file rejected
    assert out.count("stored   ") == 3
    assert "rejected " in out
    assert "x.png: content does not match image/png" in out
    assert "3 stored, 0 skipped (already stored), 1 rejected, 0 failed" in out

    code, out, err = cis(*url, "upload", str(folder), "--user", user, "--json", "--no-progress")
    lines = [json.loads(line) for line in out.splitlines()]
    statuses = sorted(line["status"] for line in lines)
    assert statuses == ["duplicate", "duplicate", "duplicate", "rejected"]
    assert code == 1
    assert "0 stored, 3 skipped (already stored), 1 rejected" in err
    stored = {Path(line["path"]).name: line for line in lines if line["status"] == "duplicate"}
    assert set(stored) == {"p0.png", "p1.png", "deep.png"}
    assert stored["p0.png"]["image"]["tags"] == ["trip"]

    code, out, _ = cis(*url, "upload", str(folder / "p0.png"), "--user", user)
    assert code == 0
    assert "0 stored, 1 skipped (already stored)" in out

    code, out, _ = cis(*url, "ls", "--user", user)
    assert code == 0
    assert all(name in out for name in ("p0.png", "p1.png", "deep.png"))
    code, out, _ = cis(*url, "ls", "--user", user, "--json", "--status", "rejected")
    rejected = [json.loads(line) for line in out.splitlines()]
    assert [image["filename"] for image in rejected] == ["x.png", "x.png"]  # tried each run

    image_id = stored["p1.png"]["image_id"]
    code, out, _ = cis(*url, "info", image_id)
    assert code == 0
    assert image_id in out
    assert "p1.png" in out
    code, out, _ = cis(*url, "info", image_id, "--json")
    assert json.loads(out)["sha256"] == stored["p1.png"]["sha256"]

    target = tmp_path / "copy.png"
    code, out, _ = cis(*url, "get", image_id, "-o", str(target))
    assert code == 0
    assert target.read_bytes() == (folder / "p1.png").read_bytes()
    with Client(service.url) as client:
        wait_for_variants(client, image_id)
    code, out, _ = cis(*url, "get", image_id, "-o", str(tmp_path), "--variant", "thumb")
    assert code == 0
    assert (tmp_path / "p1-thumb.webp").exists()
    code, out, _ = cis(*url, "get", image_id, "--variant", "thumb", "-o", f"{tmp_path}/thumbs/")
    assert code == 0, out
    assert (tmp_path / "thumbs" / "p1-thumb.webp").is_file()  # the folder made, not a file

    (folder / "p0.png").write_bytes(png_bytes(40, seed=999))  # changed since the upload
    (folder / "new.png").write_bytes(png_bytes(40, seed=998))  # never uploaded
    code, out, _ = cis(*url, "check", str(folder), "--user", user)
    assert code == 1
    assert f"different {Path('photos') / 'p0.png'}" in out.replace(str(folder.parent) + "/", "")
    assert "stored    " in out
    assert "missing   " in out
    assert "2 stored, 2 missing, 1 different (of 5 files)" in out  # x.png and new.png missing

    code, out, err = cis(*url, "rm", image_id, "00000000-0000-4000-8000-000000000000")
    assert code == 1
    assert f"deleted {image_id}" in out
    assert "not found" in err
    code, _, err = cis(*url, "info", image_id)
    assert code == 1
    assert err.startswith("cis: image ")


def test_check_all_stored_is_exit_0(service: Service, user: str, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes(24, seed=300))
    assert cis("--url", service.url, "upload", str(tmp_path), "--user", user)[0] == 0
    code, out, _ = cis("check", str(tmp_path), "--user", user, env={"CIS_URL": service.url})
    assert code == 0
    assert "1 stored, 0 missing, 0 different" in out


def test_token_from_the_environment(guarded: Service, user: str, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes(24, seed=301))
    env: dict[str, str | None] = {"CIS_URL": guarded.url, "CIS_TOKEN": guarded.token(user)}
    code, out, _ = cis("upload", str(tmp_path / "a.png"), "--json", env=env)
    assert code == 0
    assert json.loads(out)["image"]["user_id"] == user
    code, _, err = cis("ls", env={"CIS_URL": guarded.url, "CIS_TOKEN": "bad"})
    assert code == 2
    assert err.startswith("cis: ")
    assert len(err.splitlines()) == 1


def test_usage_and_configuration_errors(service: Service, tmp_path: Path) -> None:
    code, _, err = cis("--url", service.url, "upload", str(tmp_path / "nothing"), "--user", "u")
    assert (code, err) == (2, f"cis: no such file or folder: {tmp_path / 'nothing'}\n")
    (tmp_path / "a.png").write_bytes(b"x")
    code, _, err = cis("--url", service.url, "upload", str(tmp_path))
    assert code == 2  # no credential and no --user
    assert "--user" in err
    code, _, err = cis("--url", "ftp://example", "ls")
    assert code == 2
    assert err.startswith("cis: invalid URL")
    code, _, _ = cis("upload", "--concurrency", "0", str(tmp_path))
    assert code == 2


def test_unreachable_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [str(CIS), "ls"],
        env={**os.environ, "CIS_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == f"cis: cannot reach {url}: connection refused\n"
    assert done.stdout == ""


def test_closed_stdout_ends_quietly_with_141(client: Client, service: Service, user: str) -> None:
    """`cis ls --json | head -1`: no `cis: broken pipe`, 128 + SIGPIPE as `ls` would."""
    client.upload(png_bytes(16, seed=310), user_id=user)
    env = {**os.environ, "CIS_URL": service.url}
    for args in (["--json"], []):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before cis writes a line
        try:
            done = subprocess.run(
                [str(CIS), "ls", "--user", user, *args],
                env=env,
                stdout=write,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            os.close(write)
        assert (done.returncode, done.stderr) == (141, ""), args


def test_ctrl_c_stops_and_the_next_run_resumes(
    service: Service, user: str, big_png: Path, tmp_path: Path
) -> None:
    """SIGINT during a multipart upload: exit 130, state kept; the rerun completes the same
    upload (same image id) from its state file.

    To interrupt at a known point whatever the machine's speed, the service is frozen
    (SIGSTOP) as soon as the state file appears, which is before any part is signed: cis
    gets SIGINT while it waits for the service, which then resumes (SIGCONT); the parts
    stop at their first chunk."""
    state_dir = tmp_path / "state"
    shutil.copy(big_png, tmp_path / "big.png")
    env = {**os.environ, "CIS_URL": service.url, "CIS_CLIENT_STATE_DIR": str(state_dir)}
    command = [str(CIS), "upload", str(tmp_path / "big.png"), "--user", user, "--json"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not list(state_dir.glob("*.json")) and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"cis ended before the upload started: {process.communicate()}")
        time.sleep(0.002)
    os.kill(service.process.pid, signal.SIGSTOP)
    try:
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
    finally:
        os.kill(service.process.pid, signal.SIGCONT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err
    [state_file] = state_dir.glob("*.json")
    image_id = json.loads(state_file.read_text())["image_id"]

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["image_id"] == image_id
    assert not state_file.exists()
