"""The next mistakes (issue 24), part "run": options, environment variables, faults while files are
written, races, and download servers that misbehave.

Each test is one case a new user (or an unlucky machine) met. Its docstring says what happened
before, by class: handled clearly, unclear message, raw traceback, hang, silent wrong result, lost
work. Everything runs on a tiny model trained once, on a small .npz of the bundled digits; the
download tests use a server on 127.0.0.1 and hard time limits (``no_hang``), so none can hang.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

import cae_lib.commands.train as train_command
import cae_lib.files as files
import cae_lib.machine as machine
from cae_lib.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from cae_lib.data import ChecksumError, DatasetUnavailableError, DownloadError, ensure_file, get_info, load_dataset
from cae_lib.data.download import download_deadline, download_file, max_file_bytes
from cae_lib.run_folder import RunLock
from cli_helpers import SMALL, make_npz, run_cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable of the user's shell leaks in, and the toolkit's cache is a throw-away folder."""
    for var in ("CAE_DATA_DIR", "CAE_NUM_THREADS", "CAE_MEMORY_BUDGET_MB", "CAE_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch run (``run/model.pt``) of a tiny model on ``data.npz`` (320 digits)."""
    home = tmp_path_factory.mktemp("tiny")
    make_npz(home / "data.npz", n=(200, 60, 60))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(home / "xdg"))
        mp.delenv("CAE_DATA_DIR", raising=False)
        from cae_lib.cli import main

        assert main(["train", "--dataset", str(home / "data.npz"), "--out", str(home / "run"), "--batch-size", "64", *SMALL]) == 0
    return home / "run"


def _error_line(err: str) -> str:
    """The one ``error:`` line of a command's stderr (it must be there)."""
    lines = [line for line in err.splitlines() if line.startswith("error:") or ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, option", [
    (["sample", "--checkpoint", "run", "--n", "0"], "--n"),
    (["train", "--steps", "0"], "--steps"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--lr", "-0.01"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--temperature", "nan"], "--temperature"),
    (["sample", "--checkpoint", "run", "--scale", "nan"], "--scale"),
])
def test_a_number_out_of_range_is_a_usage_error(argv: list[str], option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Before: handled clearly (argparse names the option and the values it takes). Pinned here."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and f"argument {option}:" in _error_line(err) and "is not" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("budget, n, most", [(None, 100000, 57065), ("64", 10000, 7133)])
def test_more_samples_than_the_memory_budget_are_refused_before_any_work(budget, n, most, tiny_run, tmp_path, monkeypatch, capsys) -> None:
    """``sample --n 100000``. Before: hang (10**6 ran for minutes: the sampler made them all, then matplotlib
    drew a grid of every sample); 100,000 took 1.8 GB, over Binder's memory. Now refused at once, naming the
    largest --n that fits the memory budget."""
    if budget:
        monkeypatch.setenv("CAE_MEMORY_BUDGET_MB", budget)
    start = time.monotonic()
    code, out, err = run_cli(capsys, "sample", "--checkpoint", tiny_run, "--n", n, "--out", tmp_path / "s.png")
    line = _error_line(err)
    assert code == 2 and f"--n {n}:" in line and f"at most --n {most}" in line and "CAE_MEMORY_BUDGET_MB" in line
    assert "fitting" not in out and time.monotonic() - start < 10  # refused before the sampler is fitted
    assert list(tmp_path.iterdir()) == []


def test_a_large_sample_keeps_every_sample_and_draws_a_readable_grid(tiny_run, tmp_path, capsys) -> None:
    """``sample --n 300 --npz``. Before: hang for large n (a grid of every sample); now the grid shows 256."""
    code, out, _ = run_cli(capsys, "sample", "--checkpoint", tiny_run, "--n", "300", "--out", tmp_path / "s.png", "--npz", tmp_path / "s.npz")
    assert code == 0 and "the grid shows the first 256 of the 300 samples (all 300 are in" in out
    assert json.loads((tmp_path / "s.json").read_text())["grid_shows"] == 256
    assert len(load_dataset(str(tmp_path / "s.npz"), split="train")) == 300


@pytest.mark.parametrize("label", ["10", "-1"])
def test_a_label_the_model_has_not_got_lists_the_classes(label: str, tiny_run, tmp_path, capsys) -> None:
    """``sample --label 10`` on a 10-class model. Before: handled clearly. Pinned here."""
    code, _, err = run_cli(capsys, "sample", "--checkpoint", tiny_run, "--label", label, "--out", tmp_path / "s.png")
    line = _error_line(err)
    assert code == 2 and f"--label {label} is not a class of" in line and "choose one of 0 = 0" in line and "9 = 9" in line
    assert not list(tmp_path.glob("s.*"))


@pytest.mark.parametrize("device, gpus, expected", [
    ("cuda", 0, "no CUDA GPU is available here"),
    ("cuda:7", 1, "this machine has 1 GPU, numbered 0 to 0"),
    ("mps", 0, "Apple's MPS is not available here"),
    ("gpu", 0, "is not a device name; use --device auto"),
    ("meta", 0, "cae-lib runs on auto"),
])
def test_a_device_this_machine_has_not_got_is_refused_before_any_work(device, gpus, expected, tmp_path, monkeypatch, capsys) -> None:
    """``train --device cuda`` without a GPU, ``mps`` off a Mac, a typo (``gpu``). Before: unclear messages
    from PyTorch ("Found no NVIDIA driver on your system", "PyTorch is not linked with support for mps
    devices", "Expected one of cpu, cuda, ipu, xpu, ... device type at start of device string: gpu")."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(machine, "_mps_available", lambda: False)
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--device", device, "--out", tmp_path / "run", *SMALL)
    line = _error_line(err)
    assert code == 2 and f"device {device!r} (--device" in line and expected in line
    assert "--device auto" in line or "--device cuda:0" in line  # the fix
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------
# Environment variables
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("var, value", [
    ("CAE_NUM_THREADS", "abc"), ("CAE_NUM_THREADS", "0"), ("CAE_MEMORY_BUDGET_MB", "-5"), ("CAE_MEMORY_BUDGET_MB", "abc"),
])
def test_a_wrong_environment_variable_stops_every_command_at_once(var, value, tmp_path, monkeypatch, capsys) -> None:
    """Before: CAE_NUM_THREADS handled clearly; CAE_MEMORY_BUDGET_MB=-5 was silently ignored on data
    small enough (digits trained), and elsewhere said "must be >= 0 MB, got -5.0" without a fix."""
    monkeypatch.setenv(var, value)
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--out", tmp_path / "run", *SMALL)
    line = _error_line(err)
    assert code == 2 and f"{var}={value!r}" in line and f"e.g. {var}=" in line
    assert not (tmp_path / "run").exists()


def test_cae_data_dir_naming_a_file_says_so(tmp_path, monkeypatch, capsys) -> None:
    """``CAE_DATA_DIR=/etc/passwd``. Before: handled, but "the data folder ... is a file" did not say that
    the path came from CAE_DATA_DIR, which the user may have set long ago."""
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    monkeypatch.setenv("CAE_DATA_DIR", str(afile))
    code, _, err = run_cli(capsys, "train", "--dataset", "breastmnist", "--out", tmp_path / "run", *SMALL)
    line = _error_line(err)
    assert code == 2 and f"CAE_DATA_DIR={afile} names a file, not a folder" in line and "unset it" in line
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------
# Faults while a file is written
# --------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path, tiny_run: Path) -> Iterator[Path]:
    """A tmpfs with room for one checkpoint of the tiny model and a half (needs root: skipped otherwise)."""
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command to make a small disk")
    size_kb = (tiny_run / "model.pt").stat().st_size * 3 // 2 // 1024 + 16
    disk = tmp_path / "disk"
    disk.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(disk)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_keeps_the_last_checkpoint_and_says_what_to_do(small_disk, tiny_run, capsys) -> None:
    """The disk fills up while epoch 2's checkpoint is saved. Before: unclear message ("error: [enforce fail
    at inline_container.cc:672] . unexpected pos 123328 vs 123220"); the epoch-1 checkpoint did survive."""
    out = small_disk / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", tiny_run.parent / "data.npz", "--out", out, "--batch-size", "64",
                           *SMALL[2:], "--epochs", "2")
    line = _error_line(err)
    assert code == 2 and "the disk is full" in line and "the earlier model.pt there is unchanged" in line
    assert "Free some space" in line and f"--out {out} --resume" in line and "(1 of 2 epochs done)" in line
    _, _, payload = load_checkpoint(out / "model.pt")  # the last good checkpoint, complete
    assert payload["extra"]["epochs_done"] == 1
    assert sorted(p.name for p in out.iterdir()) == [".lock", "model.json", "model.pt"]  # nothing half-written


KILL_AT_RENAME = """
import os, signal, sys
target = os.path.abspath(sys.argv[1])
rename = os.replace
def replace(src, dst, *a, **k):
    if os.path.abspath(dst) == target:  # the file is complete in its temporary name: die now
        os.kill(os.getpid(), signal.SIGKILL)
    return rename(src, dst, *a, **k)
os.replace = replace
from cae_lib.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("command, option", [("evaluate", "--json"), ("sample", "--npz")])
def test_sigkill_while_an_output_is_written_leaves_no_file_under_its_name(command, option, tiny_run, tmp_path) -> None:
    """SIGKILL (an out-of-memory kill, a closed laptop) while ``--json`` / ``--npz`` is written. Before:
    handled (atomic writes); pinned with a real SIGKILL at the last moment before the file gets its name."""
    target = tmp_path / ("metrics.json" if option == "--json" else "s.npz")
    argv = [command, "--checkpoint", str(tiny_run), option, str(target)] + (["--out", str(tmp_path / "s.png"), "--n", "8"] if command == "sample" else [])
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    done = subprocess.run([sys.executable, "-c", KILL_AT_RENAME, str(target), *argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not target.exists()
    assert [p.name for p in tmp_path.glob(f".{target.name}.*.tmp")]  # the bytes went to a temporary file of its own


def test_every_file_sample_writes_gets_its_name_by_an_atomic_rename(tiny_run, tmp_path, monkeypatch, capsys) -> None:
    """``sample --out --npz``: the grid, its settings file and the .npz all appear by ``os.replace``."""
    renamed: list[str] = []
    rename = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).parent == tmp_path:
            renamed.append(Path(dst).name)
        return rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    code, _, _ = run_cli(capsys, "sample", "--checkpoint", tiny_run, "--n", "8", "--out", tmp_path / "s.png", "--npz", tmp_path / "s.npz")
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir() if p.name != "xdg") == sorted(renamed) == ["s.json", "s.npz", "s.png"]


def test_the_figures_of_every_command_are_saved_atomically() -> None:
    """``demo``, ``benchmark`` and ``augment-benchmark`` saved their PNGs with ``fig.savefig(final path)``.
    Before: lost work possible (a kill mid-save left half a PNG under the final name); now ``save_figure``."""
    for path in sorted((REPO / "cae_lib" / "commands").glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ".savefig(" in line:
                assert "savefig(tmp" in line, f"{path.name}:{number} saves a figure under its final name: use cae_lib.files.save_figure"


def test_save_figure_never_leaves_half_an_image(tmp_path, monkeypatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    (tmp_path / "a.png").write_bytes(b"old")

    def crash(*args, **kwargs):
        Path(args[0]).write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(fig, "savefig", crash)
    with pytest.raises(KeyboardInterrupt):
        files.save_figure(fig, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.png"]
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Races: two runs on one folder, evaluate while a run writes
# --------------------------------------------------------------------------------------------
def test_a_run_that_fills_the_folder_just_after_the_check_is_not_overwritten(tmp_path, monkeypatch, capsys) -> None:
    """Run B checks ``--out`` (empty), run A finishes there, then B takes the lock. Before: lost work (B
    trained into the folder and replaced A's checkpoint without --overwrite); now B checks again under the lock."""
    out = tmp_path / "run"
    theirs = b"run A's checkpoint"

    class LateLock(RunLock):
        def __enter__(self) -> RunLock:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / "model.pt").write_bytes(theirs)  # the other run finished in the window
            return super().__enter__()

    monkeypatch.setattr(train_command, "RunLock", LateLock)
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--out", out, *SMALL)
    assert code == 2 and "is not empty (model.pt)" in _error_line(err) and "--overwrite" in err
    assert (out / "model.pt").read_bytes() == theirs


def test_two_runs_started_together_on_one_folder(tiny_run, tmp_path) -> None:
    """Two trainings started at the same moment on one new folder. Before: handled by the lock (the loser
    said "in use"), except in the window above. Now: exactly one trains, the other says why, one complete run stays."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    argv = [sys.executable, "-m", "cae_lib", "train", "--dataset", str(tiny_run.parent / "data.npz"), "--out", str(out), "--batch-size", "64", *SMALL]
    runs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in runs]
    for p in runs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "Traceback" not in loser and ("in use by another run" in loser or "is not empty" in loser)
    assert read_checkpoint(out / "model.pt")["extra"]["epochs_done"] == 1


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A run folder locked by "another process" (the same OS lock a training takes), with its holder line."""
    folder = tmp_path / "busy"
    folder.mkdir()
    holder = "pid 4242, since 2026-01-02 03:04:05"
    with open(folder / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write(holder + "\n")
        f.flush()
        yield folder, holder


def test_evaluate_before_a_runs_first_checkpoint_says_the_run_is_in_progress(busy, capsys) -> None:
    """Before: unclear message ("checkpoint busy is a folder without a model.pt. Pass the model.pt file that
    `train` wrote." while a training was writing there)."""
    folder, holder = busy
    for target in (folder, folder / "model.pt"):
        code, _, err = run_cli(capsys, "evaluate", "--checkpoint", target)
        line = _error_line(err)
        assert code == 2 and f"in use by a training run ({holder}) that has not saved its first checkpoint yet" in line


def test_evaluate_while_a_run_writes_reads_its_last_checkpoint_and_says_so(busy, tiny_run, capsys) -> None:
    """Before: unclear message (the checkpoint was read, with "finish it with ... --resume", which the
    running training's lock would refuse). Now a warning says that a run is writing there."""
    folder, holder = busy
    model, cfg, payload = load_checkpoint(tiny_run / "model.pt")
    save_checkpoint(folder / "model.pt", model, cfg, payload["history"], extra={"epochs_done": 1, "epochs_total": 3}, data=payload["data"])
    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", folder)
    assert code == 0 and "NMI" in out.upper()
    assert f"a training run is writing to {folder} right now ({holder}): this is the checkpoint it saved last (1 of 3 epochs done)" in err
    assert "--resume" not in err


def test_a_checkpoint_read_while_it_is_rewritten_is_always_complete(tiny_run, tmp_path) -> None:
    """``evaluate`` reading while ``train`` saves. Before: handled (atomic rename); pinned with 25 saves
    racing 25+ reads: every read sees a whole checkpoint, never half a file."""
    model, cfg, payload = load_checkpoint(tiny_run / "model.pt")
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, cfg, payload["history"], extra={"epochs_done": 0})
    stop = threading.Event()

    def writer() -> None:
        for i in range(1, 26):
            save_checkpoint(path, model, cfg, payload["history"], extra={"epochs_done": i})
        stop.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    seen: list[int] = []
    while not stop.is_set() or not seen:
        seen.append(read_checkpoint(path)["extra"]["epochs_done"])
    thread.join(30)
    assert seen == sorted(seen) and read_checkpoint(path)["extra"]["epochs_done"] == 25


# --------------------------------------------------------------------------------------------
# Download servers that misbehave (127.0.0.1 only)
# --------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int = 200, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        kind, body = self.server.kind, self.server.body
        until = time.monotonic() + 15  # no handler outlives a test
        try:
            if kind == "ok":
                self._send(length=len(body))
                self.wfile.write(body)
            elif kind in ("404", "500"):
                self.send_error(int(kind))
            elif kind == "close_mid_file":
                self._send(length=len(body))
                self.wfile.write(body[: len(body) // 2])
            elif kind == "drip_body":  # a byte every 50 ms: never a stall of a whole second
                self._send(length=len(body))
                for i in range(len(body)):
                    if time.monotonic() > until:
                        break
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            elif kind == "drip_headers":  # even the status line and headers come a byte at a time
                for byte in b"HTTP/1.0 200 OK\r\nX-Padding: " + b"a" * 10**6:
                    if time.monotonic() > until:
                        break
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            elif kind == "endless":  # no length, and the bytes never stop
                self._send()
                while time.monotonic() < until:
                    self.wfile.write(b"\0" * 65536)
            elif kind == "huge_length":  # announces 50 GB
                self._send(length=50 * 10**9)
                while time.monotonic() < until:
                    self.wfile.write(b"\0" * 65536)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: as it should
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    kind = "ok"
    body = b""


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def payload(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """A small MedMNIST-layout .npz (bytes) and its MD5."""
    path = make_npz(tmp_path_factory.mktemp("payload") / "p.npz", n=(24, 8, 8))
    data = path.read_bytes()
    return data, hashlib.md5(data).hexdigest()


def _mirror(srv: _Server, kind: str, body: bytes, md5: str):
    """BloodMNIST's registry entry with 40 images, pointed at the test server behaving as ``kind``."""
    srv.kind, srv.body = kind, body
    url = f"http://127.0.0.1:{srv.server_address[1]}/bloodmnist.npz"
    info = dataclasses.replace(get_info("bloodmnist"), urls={28: url}, md5s={28: md5}, sizes=(28,),
                               n_samples={"train": 24, "val": 8, "test": 8})
    return info, url


@pytest.mark.parametrize("kind, error, expected", [
    ("drip_body", DatasetUnavailableError, "was too slow"),
    ("drip_headers", DatasetUnavailableError, "was too slow"),
    ("endless", DatasetUnavailableError, "but this file can be at most"),
    ("huge_length", DatasetUnavailableError, "announces 50,000,000,000 bytes, but this file can be at most"),
    ("wrong_file", ChecksumError, "MD5 mismatch"),
    ("404", DatasetUnavailableError, "HTTP 404"),
    ("500", DatasetUnavailableError, "HTTP 500"),
    ("close_mid_file", DatasetUnavailableError, "was cut short"),
])
def test_a_misbehaving_server_never_hangs_and_leaves_nothing(kind, error, expected, server, payload, tmp_path, no_hang) -> None:
    """Before: drip_body and drip_headers hang (a per-read timeout never fires for a byte every 50 ms: the
    40 KB file took 30 min, a real one days); endless and huge_length hang and fill the disk; wrong_file,
    404, 500 and close_mid_file were handled clearly. Every failure names the manual steps and keeps nothing."""
    body, md5 = payload
    info, url = _mirror(server, "ok" if kind == "wrong_file" else kind, body[:-10] + b"0123456789" if kind == "wrong_file" else body, md5)
    start = time.monotonic()
    with pytest.raises(error) as caught:
        no_hang(ensure_file, info, 28, tmp_path / "data", timeout=1, progress=False, deadline=2, limit=15)
    message = str(caught.value)
    assert expected in message and url in message and md5 in message and "CAE_DATA_DIR" in message
    assert time.monotonic() - start < 8
    assert not (tmp_path / "data").exists()  # no file, no .part, not even the folder it would have made


def test_the_default_deadline_follows_the_announced_length(server, payload, tmp_path, no_hang) -> None:
    """Without an explicit deadline, a 100-byte file at 20 bytes/s is stopped after grace + 100 B at 50 KB/s."""
    body, md5 = payload
    server.kind, server.body = "drip_body", body[:100]
    url = f"http://127.0.0.1:{server.server_address[1]}/x.npz"
    import cae_lib.data.download as download

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(download, "DEADLINE_GRACE_S", 1.0)
        with pytest.raises(DownloadError, match="too slow"):
            no_hang(download_file, url, tmp_path / "x.npz", None, timeout=1, progress=False, max_bytes=10**9, limit=15)
    assert list(tmp_path.iterdir()) == []


def test_the_size_limit_fits_the_real_files_and_bounds_the_time(shared_data_dir) -> None:
    """The limit comes from the registry's image counts; it must never refuse an official file."""
    for name in ("pneumoniamnist", "breastmnist"):
        info, actual = get_info(name), (shared_data_dir / f"{name}.npz").stat().st_size
        assert actual <= max_file_bytes(info, 28) < 2 * actual + (2 << 20)
        assert 60 < download_deadline(max_file_bytes(info, 28)) < 600
    assert np.isfinite(download_deadline(None))
