"""No lost work (issue 10): run folders, locks, output paths checked before any work, Ctrl-C, caches, threads.

Each test is one case a new user met, and the class of problem it stands for.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cae_lib.commands.demo as demo_cmd
import cae_lib.commands.sample as sample_cmd
import cae_lib.commands.train as train_cmd
import cae_lib.data.checksums as checksums_mod
from cae_lib.commands.augment_benchmark import check_complete_for_publish
from cae_lib.commands.benchmark import check_benchmark_out
from cae_lib.comparison import METHODS
from cae_lib.data import ensure_file, get_info
from cae_lib.run_folder import RunFolderError, RunLock, default_run_dir
from cae_lib.run_trainer import RunTrainer
from cae_lib.machine import available_cpus, cpu_quota, default_num_threads
from cli_helpers import SMALL, make_npz, run_cli


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Work in a fresh folder, with no MedMNIST files and a throw-away cache."""
    (tmp_path / "no_medmnist").mkdir()
    monkeypatch.setenv("CAE_DATA_DIR", str(tmp_path / "no_medmnist"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A finished run folder (digits, one epoch of a small model)."""
    run = tmp_path_factory.mktemp("base") / "run"
    from cae_lib.cli import main

    assert main(["train", "--dataset", "digits", "--out", str(run), *SMALL]) == 0
    return run


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _must_not_run(*args, **kwargs):
    raise AssertionError("the command started its work before checking its outputs")


# --------------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------------
def test_train_refuses_a_folder_that_holds_a_run(base_run, tmp_path, monkeypatch, capsys):
    """Case: `train` into an existing run folder silently replaced the model, next to a stale metrics.json."""
    run = _copy(base_run, tmp_path / "reuse")
    (run / "metrics.json").write_text("{}")
    before = (run / "model.pt").read_bytes()
    with monkeypatch.context() as m:
        m.setattr(train_cmd, "train_cae", _must_not_run)
        code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--out", run, *SMALL)
    assert code == 2 and "not empty" in err and "--resume" in err and "--overwrite" in err
    assert (run / "model.pt").read_bytes() == before
    code, out, _ = run_cli(capsys, "train", "--dataset", "digits", "--seed", "5", "--out", run, "--overwrite", *SMALL)
    assert code == 0 and "removed the earlier run's model.pt, model.json, metrics.json" in out
    assert not (run / "metrics.json").exists() and json.loads((run / "model.json").read_text())["config"]["train"]["seed"] == 5


def test_resume_needs_a_run_and_the_same_settings(base_run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--out", tmp_path / "new", "--resume", *SMALL)
    assert code == 2 and "no " in err and "model.pt to continue" in err
    run = _copy(base_run, tmp_path / "res")
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--out", run, "--resume", "--lr", "0.01", *SMALL)
    assert code == 2 and "train.lr (--lr): 0.003 in the checkpoint, 0.01 now" in err


def test_resume_on_a_finished_run_says_that_nothing_was_trained(base_run, tmp_path, capsys):
    """Case: `--resume` on a finished run printed "trained ... in 5.2 s" as if it had trained again."""
    run = _copy(base_run, tmp_path / "done")
    before = (run / "model.pt").read_bytes()
    code, out, _ = run_cli(capsys, "train", "--dataset", "digits", "--out", run, "--resume", *SMALL)
    assert code == 0 and "nothing to resume: the run in" in out and "had already finished (1 of 1 epochs)" in out
    assert "\ntrained " not in "\n" + out and (run / "model.pt").read_bytes() == before


def test_the_default_output_folder_is_new_for_every_run(capsys):
    """Case: the default `--out runs/cae` made any two trainings clobber each other."""
    code, out, _ = run_cli(capsys, "train", "--dataset", "digits", *SMALL)
    assert code == 0
    first = next(Path("runs").iterdir())
    assert first.name.startswith("digits-cae-") and str(first / "model.pt") in out
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    a = default_run_dir("my data.npz", "ae", now=now)
    a.mkdir(parents=True)
    assert a.name == "my-data-ae-20260102-030405" and default_run_dir("my data.npz", "ae", now=now).name.endswith("-2")


def test_a_second_run_on_a_folder_in_use_is_refused(tmp_path, capsys):
    """Case: two concurrent runs on one folder both reported success, and only one model survived."""
    folder = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from cae_lib.run_folder import RunLock\n"
         f"with RunLock({str(folder)!r}):\n    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--out", folder, *SMALL)
        assert code == 2 and "in use by another run (pid" in err
        with pytest.raises(RunFolderError, match="in use"):
            with RunLock(folder):
                pass
    finally:
        holder.communicate("", timeout=60)
    with RunLock(folder), RunLock(folder):  # free again, and nested use in one process is fine
        pass
    assert not folder.exists()  # a lock that created an empty folder removes it


# --------------------------------------------------------------------------------------------
# Outputs: checked before any work; never an input, another run's file, or an existing file
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv,expected",
    [
        (["train", "--dataset", "digits", "--out", "afile.txt"], "is a file; a run needs a folder"),
        (["train", "--dataset", "digits", "--out", "ro/run"], "is read-only"),
        (["sample", "--checkpoint", "{run}", "--out", "adir"], "is a folder; give a file name"),
        (["sample", "--checkpoint", "{run}", "--npz", "{run}/model.pt"], "one of this command's inputs"),
        (["sample", "--checkpoint", "{run}", "--out", "{run}/model.png"], "model.json is one of this command's inputs"),
        (["sample", "--checkpoint", "{run}", "--out", "{base}/model.png"], "would replace a checkpoint or its settings file"),
        (["sample", "--checkpoint", "{run}", "--npz", "{base}/model.pt"], "would replace a checkpoint or its settings file"),
        (["sample", "--checkpoint", "{run}", "--out", "old.png"], "already exists. Pass --overwrite"),
        (["sample", "--checkpoint", "{run}", "--out", "x.png", "--npz", "x.json"], "both write"),
        (["evaluate", "--checkpoint", "{run}", "--json", "adir"], "is a folder; give a file name"),
        (["evaluate", "--checkpoint", "{run}", "--json", "{run}/model.json"], "one of this command's inputs"),
        (["demo", "--dataset", "digits", "--out", "afile.txt"], "is a file; this option needs a folder"),
        (["demo", "--dataset", "digits", "--out", "adir"], "not a cae-lib report"),
    ],
)
def test_bad_outputs_are_refused_before_any_work(argv, expected, base_run, tmp_path, monkeypatch, capsys):
    """Cases: tracebacks for a file/folder mix-up, late failures after an epoch, outputs that replaced the checkpoint."""
    run = _copy(base_run, tmp_path / "x")
    Path("afile.txt").write_text("x")
    Path("adir").mkdir()
    Path("adir/notes.txt").write_text("mine")
    Path("old.png").write_bytes(b"png")
    Path("ro").mkdir(mode=0o555)
    for module, name in ((train_cmd, "train_cae"), (sample_cmd, "make_sampler"), (demo_cmd, "run_demo")):
        monkeypatch.setattr(module, name, _must_not_run)
    monkeypatch.setattr("cae_lib.commands.evaluate.evaluate_model", _must_not_run)
    before = {p: p.read_bytes() for p in run.iterdir()}
    argv = [a.replace("{run}", str(run)).replace("{base}", str(base_run)) for a in argv]
    code, _, err = run_cli(capsys, *argv, *(SMALL if argv[0] == "train" else []))
    assert code == 2 and expected in err, err
    assert {p: p.read_bytes() for p in run.iterdir()} == before


def test_sample_replaces_its_own_earlier_output_only_with_overwrite(base_run, capsys):
    assert run_cli(capsys, "sample", "--checkpoint", base_run, "--n", "4", "--out", "s.png")[0] == 0
    assert run_cli(capsys, "sample", "--checkpoint", base_run, "--n", "4", "--out", "s.png")[0] == 2
    assert run_cli(capsys, "sample", "--checkpoint", base_run, "--n", "4", "--out", "s.png", "--overwrite")[0] == 0


def test_benchmark_writes_a_new_folder_and_publishes_complete_runs_only(tmp_path):
    """Case: `benchmark` wrote into the committed results by default, and a partial run replaced the full table."""
    from cae_lib.cli import build_parser

    args = build_parser().parse_args(["benchmark", "--dataset", "pneumoniamnist"])
    assert args.out is None and not args.publish
    committed = tmp_path / "results"
    committed.mkdir()
    (committed / "pneumoniamnist_benchmark.json").write_text(json.dumps({"meta": {"seeds": 3}}))
    with pytest.raises(ValueError, match="partial run"):
        check_benchmark_out(committed, "pneumoniamnist", ["cae"], 1, publish=True, overwrite=False)
    with pytest.raises(ValueError, match="partial run"):
        check_benchmark_out(committed, "pneumoniamnist", list(METHODS), 2, publish=True, overwrite=False)
    check_benchmark_out(committed, "pneumoniamnist", list(METHODS), 3, publish=True, overwrite=False)
    with pytest.raises(ValueError, match="already holds results"):
        check_benchmark_out(committed, "pneumoniamnist", ["cae"], 1, publish=False, overwrite=False)


def test_augment_benchmark_publishes_complete_runs_only(tmp_path):
    """Class (found in review): `augment-benchmark --publish` let a 1-seed run replace the committed 3-seed table."""
    committed = tmp_path / "pneumoniamnist_augment.json"
    committed.write_text(json.dumps({"fractions": [0.01, 0.05, 0.2], "seeds": 3}))
    with pytest.raises(ValueError, match="partial run"):
        check_complete_for_publish(committed, [0.01], 3)
    with pytest.raises(ValueError, match="partial run"):
        check_complete_for_publish(committed, [0.01, 0.05, 0.2], 1)
    check_complete_for_publish(committed, [0.01, 0.05, 0.2], 3)
    check_complete_for_publish(tmp_path / "none_yet.json", [0.01], 1)  # nothing committed: nothing to lose


# --------------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------------
def test_ctrl_c_prints_where_the_checkpoint_is_and_how_to_resume(monkeypatch, capsys):
    """Case: Ctrl-C printed a full KeyboardInterrupt traceback."""
    real = RunTrainer.train_epoch

    def interrupted_in_epoch_2(self):
        if self.state.epoch == 1:
            raise KeyboardInterrupt
        return real(self)

    with monkeypatch.context() as m:
        m.setattr(RunTrainer, "train_epoch", interrupted_in_epoch_2)
        code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--out", "run", "--epochs", "3", "--width", "4", "--latent-dim", "8", "--no-progress")
    assert code == 130 and len(err.strip().splitlines()) == 1
    assert "the last checkpoint is run/model.pt (1 of 3 epochs done)" in err and err.strip().endswith("--out run --resume")
    command = shlex.split(err.split("continue with: ")[1])
    assert command == ["python", "-m", "cae_lib", "train", "--no-progress", "--out", "run", "--resume"]  # the settings are in the run
    code, _, err = run_cli(capsys, "evaluate", "--checkpoint", "run")  # an unfinished checkpoint says so where it is used
    assert code == 0 and "unfinished run (1 of 3 epochs done); finish it with python -m cae_lib train --out run --resume" in err
    code, out, _ = run_cli(capsys, *command[3:])
    assert code == 0 and "resumed after epoch 1: trained CAE on digits for 2 more epochs (3 in all)" in out
    assert json.loads(Path("run/model.json").read_text())["extra"]["epochs_done"] == 3


# --------------------------------------------------------------------------------------------
# Verification stamps and threads
# --------------------------------------------------------------------------------------------
def test_checksum_stamps_live_in_the_cache_never_beside_the_data(tmp_path, monkeypatch):
    """Case: `*.md5ok` stamps were written next to the user's data (and tests depended on ../shared being read-only)."""
    folder = tmp_path / "my_medmnist"
    path = make_npz(folder / "bloodmnist.npz")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    info = get_info("bloodmnist")
    info = type(info)(**{**info.__dict__, "md5s": {28: md5}, "urls": {28: "http://127.0.0.1:9/none"}, "sizes": (28,)})
    assert ensure_file(info, 28, folder, download=True, progress=False) == path
    assert sorted(p.name for p in folder.iterdir()) == ["bloodmnist.npz"]
    assert len(list((tmp_path / "xdg" / "cae_lib" / "verified").iterdir())) == 1
    monkeypatch.setattr(checksums_mod, "md5sum", lambda p: pytest.fail("hashed a file verified before"))
    assert ensure_file(info, 28, folder, download=True, progress=False) == path


def test_thread_count_respects_the_override_and_the_container_quota(tmp_path):
    """Case: two trainings sharing the cores ran 4 to 8 times slower (threads oversubscribed, quota ignored)."""
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(v2) == 1.5 and available_cpus(v2) <= 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(v2) is None
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(tmp_path / "v1") == 1.0 and available_cpus(tmp_path / "v1") == 1
    assert default_num_threads({}, tmp_path / "v1") == 1
    assert default_num_threads({"CAE_NUM_THREADS": "3"}, tmp_path / "v1") == 3
    assert default_num_threads({"OMP_NUM_THREADS": "2"}, tmp_path / "v1") == 2
    with pytest.raises(ValueError, match="CAE_NUM_THREADS"):
        default_num_threads({"CAE_NUM_THREADS": "lots"})
    assert default_num_threads({}, tmp_path / "none") == available_cpus(tmp_path / "none") >= 1
    assert os.cpu_count() >= available_cpus(tmp_path / "none")


def test_benchmark_reuse_takes_the_other_methods_runs_and_counts_them_as_complete(tmp_path):
    """Rows a change cannot affect (the supervised baselines) may be reused from an earlier table, and say so."""
    from cae_lib.commands.benchmark import reused_runs

    earlier = tmp_path / "old.json"
    runs = [{"key": k, "seed": s, "method": METHODS[k]} for k in METHODS for s in range(3)]
    earlier.write_text(json.dumps({"meta": {"date": "2026-11-26", "seeds": 3}, "runs": runs}))
    fresh = ["raw_kmeans", "pca_kmeans", "ae", "vae", "contrastive", "cae"]
    kept, when = reused_runs(earlier, fresh, seeds=2)
    assert sorted({r["key"] for r in kept}) == sorted(set(METHODS) - set(fresh))
    assert {r["seed"] for r in kept} == {0, 1} and all(r["reused"] for r in kept)
    assert when == "old.json (2026-11-26)"
    # Reusing them again from the table that reused them still names the table they ran in.
    again = tmp_path / "new.json"
    again.write_text(json.dumps({"meta": {"date": "2026-11-27", "seeds": 3, "reused_from": when}, "runs": kept}))
    assert reused_runs(again, fresh, seeds=2)[1] == "old.json (2026-11-26)"
    committed = tmp_path / "results"
    committed.mkdir()
    check_benchmark_out(committed, "pneumoniamnist", fresh, 3, publish=True, overwrite=False, reused=[r["key"] for r in kept])
    with pytest.raises(ValueError, match="partial run"):
        check_benchmark_out(committed, "pneumoniamnist", fresh, 3, publish=True, overwrite=False)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a benchmark results JSON"):
        reused_runs(tmp_path / "bad.json", fresh, 3)


def test_demo_says_that_it_replaces_an_earlier_report(monkeypatch, capsys):
    """Case: `demo --out DIR` replaced an earlier report without a word. It may (make demo twice), but it says so."""
    monkeypatch.setattr(demo_cmd, "run_demo", lambda **kwargs: {})
    Path("report").mkdir()
    code, out, _ = run_cli(capsys, "demo", "--dataset", "digits", "--out", "report")
    assert code == 0 and "earlier demo report" not in out  # empty folder: nothing to replace
    Path("report/report.md").write_text("# an earlier report")
    Path("report/metrics.json").write_text("{}")
    code, out, _ = run_cli(capsys, "demo", "--dataset", "digits", "--out", "report")
    assert code == 0 and "holds an earlier demo report: its files (metrics.json, report.md) will be replaced" in out


def test_prior_sampler_warnings_come_in_the_cli_voice(base_run, capsys):
    """Case: `sample --sampler prior` printed raw Python UserWarning lines (file paths, source code) and a label
    confidence of 1.00 for samples off the data. Class: library warnings reach the user as one clean line."""
    code, out, err = run_cli(capsys, "sample", "--checkpoint", base_run, "--sampler", "prior", "--n", "4", "--out", "p.png")
    assert code == 0 and "warning: PriorSampler with a plain AE" in err
    assert "UserWarning" not in err and ".py:" not in err
    assert "which say little for samples off the data" in out


def test_resume_continues_with_the_settings_saved_in_the_run(base_run, tmp_path, capsys):
    """Case: `train --out RUN --resume` refused to continue unless every original option was typed again."""
    run = _copy(base_run, tmp_path / "again")
    code, out, err = run_cli(capsys, "train", "--out", run, "--resume", "--no-progress")  # no --dataset digits, no SMALL
    assert code == 0, err
    assert "nothing to resume" in out and "on digits" in out
    code, _, err = run_cli(capsys, "train", "--out", run, "--resume", "--width", "4", "--no-progress")  # typed, and agrees
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--out", run, "--resume", "--width", "8", "--epochs=1")
    assert code == 2 and "model.width (--width): 4 in the checkpoint, 8 now" in err and "leave those options out" in err
    assert "--epochs" not in err  # typed, but it agrees with the checkpoint
    code, _, err = run_cli(capsys, "train", "--out", run, "--resume", "--preset", "ae", *SMALL)  # a preset sets many settings
    assert code == 2 and "loss.contrastive_weight (--contrastive-weight): 1.0 in the checkpoint, 0.0 now" in err
    code, _, err = run_cli(capsys, "train", "--out", run, "--resume", "--recipe", "long")  # a recipe sets the budget
    assert code == 2 and "train.steps (--steps): 160 in the checkpoint, 1600 now" in err
    code, _, err = run_cli(capsys, "train", "--out", run, "--resume", "--recipe", "default", "--no-progress")  # and agrees
    assert code == 0, err


def test_resume_refuses_what_it_cannot_honour_and_names_the_fix(base_run, tmp_path, capsys):
    """Cases from a review of --resume: abbreviated options slipped past the comparison, a typed --preset blamed options
    nobody typed, another --dataset was loaded before being refused, a broken model.json hid the settings in model.pt,
    and --resume without --out pointed at a fresh folder."""
    run = _copy(base_run, tmp_path / "r")
    code, _, err = run_cli(capsys, "train", "--out", run, "--resume", "--wid", "8")  # refused, not expanded to --width unseen
    assert code == 2 and "unrecognized arguments: --wid" in err
    code, _, err = run_cli(capsys, "train", "--out", run, "--resume", "--preset", "cae")
    assert code == 2 and "leave --preset out (it resets every setting to the preset's)" in err
    code, _, err = run_cli(capsys, "train", "--out", run, "--resume", "--dataset", "breastmnist")  # no MedMNIST files here
    assert code == 2 and "dataset (--dataset): 'digits' in the checkpoint, 'breastmnist' now" in err and "leave those options out" in err
    (run / "model.json").write_text('{"conf')
    code, out, err = run_cli(capsys, "train", "--out", run, "--resume", "--no-progress")
    assert code == 0 and "nothing to resume" in out and "on digits" in out, err
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", "--resume")
    assert code == 2 and "--resume needs --out" in err


def test_a_weight_averaged_run_says_what_it_saved(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--dataset", "digits", "--out", tmp_path / "ema", "--ema-decay", "0.999", *SMALL)
    assert code == 0 and "the saved model is the moving average of the weights (--ema-decay 0.999)" in out
    assert "averages about 1000 steps, more than this run's" in err
