"""The course as a student sees it: a real JupyterLab in headless Chromium (Playwright).

The Python tests call the widget callbacks directly; they cannot see a JupyterLab that shows "Error
displaying widget", a widget extension of the wrong version, or a figure that does not refresh.
This test

* starts JupyterLab on a free loopback port, with no token, under a temporary ``HOME`` and
  ``JUPYTER_CONFIG_DIR`` (so no user setting leaks in), on copies of the notebooks with ``FAST = True``
  injected (papermill-style) after their ``parameters`` cell, so the repository is never written to;
* opens every notebook that has an explorer and runs all its cells;
* checks that no cell has an error output and that no output says "Error displaying widget";
* checks that every explorer's controls and first figure are rendered, then moves one of its
  sliders (or picks another option, and presses Run where there is one) and checks that the
  figure changes;
* stops the server in any case. Screenshots of every explorer go to a temporary folder (printed).

It needs Playwright (``pip install playwright``, in the test extra) and Debian's Chromium
(``apt-get install -y chromium``); the browser that Playwright would download cannot be fetched
here. Without them it skips, except in CI (``CI=true``), where it fails. About 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import nbformat
import papermill
import pytest

from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
INSTALL_HINT = "apt-get install -y chromium && pip install playwright"
#: Notebooks with at least one explorer (a call to ``widgets.*_explorer``).
EXPLORER_NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("0*.py") if "_explorer(" in p.read_text())
#: What JupyterLab prints where a widget cannot be shown.
WIDGET_ERRORS = ("Error displaying widget", "Error rendering output item", "Failed to load model class", "model not found")
CELL_BUDGET_MS = 150_000  # all cells of one notebook (FAST: 10-30 s)
FIGURE_BUDGET_MS = 60_000  # one explorer re-render

runner = load_script("tools/run_notebooks.py")


@pytest.fixture(scope="module")
def playwright_api() -> Any:
    """``playwright.sync_api``, or a skip (a failure in CI) naming what to install."""
    missing = [what for what, ok in (("playwright", importlib.util.find_spec("playwright") is not None),
                                     (str(CHROMIUM), CHROMIUM.exists())) if not ok]
    if missing:
        message = f"browser test needs {' and '.join(missing)}: {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    import playwright.sync_api  # optional dependency: imported once it is known to exist

    return playwright.sync_api


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(config_dir: Path) -> None:
    """JupyterLab user settings: render every cell (no windowing), no news or update checks."""
    settings = {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = config_dir / "lab" / "user-settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _fast_copies(folder: Path) -> None:
    """Each explorer notebook, from its .py source, with FAST (and the data) injected after `parameters`."""
    data_dir = Path(os.environ.get("CAE_DATA_DIR") or ROOT.parent / "shared" / "data" / "medmnist")
    params: dict[str, Any] = {"FAST": True, "DATASET": "digits"}
    if (data_dir / "pneumoniamnist.npz").is_file():
        params = {"FAST": True, "DATASET": "pneumoniamnist", "DATA_DIR": str(data_dir.resolve())}
    folder.mkdir(parents=True)
    for name in EXPLORER_NOTEBOOKS:
        nb = papermill.execute_notebook(runner.read_notebook(ROOT / "notebooks" / f"{name}.py"), None, parameters=params,
                                        prepare_only=True, kernel_name="python3", progress_bar=False)
        nbformat.write(runner.tidy(nb), folder / f"{name}.ipynb")


@pytest.fixture(scope="module")
def lab_url(playwright_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JupyterLab server on copies of the explorer notebooks; stopped (with its kernels) at the end."""
    tmp = tmp_path_factory.mktemp("lab")
    _write_settings(tmp / "config")
    _fast_copies(tmp / "root" / "notebooks")
    env = {**os.environ, "HOME": str(tmp / "home"), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    port = _free_port()
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.allow_root=True",
         "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={tmp / 'root'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{(tmp / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {url} within 60 s:\n{(tmp / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """Stop the server and its kernels: they run in the server's own process group, started above."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def browser(playwright_api: Any) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots -> {folder}")
    return folder


# --------------------------------------------------------------------------------------------
# What runs in the page (window.jupyterapp is exposed by --LabApp.expose_app_in_browser)
# --------------------------------------------------------------------------------------------
KERNEL_IDLE = """(path) => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== path) return false;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return Boolean(kernel) && kernel.status === 'idle';
}"""
RUN_ALL = """async (budget) => {
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`cells still running after ${budget} ms`)), budget));
    return await Promise.race([window.jupyterapp.commands.execute('notebook:run-all-cells'), timeout]);
}"""
NOTEBOOK_JSON = "() => window.jupyterapp.shell.currentWidget.content.model.toJSON()"
SHUTDOWN_KERNEL = "async () => await window.jupyterapp.shell.currentWidget.sessionContext.shutdown()"
#: An explorer in the page: the VBox whose own children include the Output widget.
EXPLORER = ".jp-OutputArea-output .widget-vbox:has(> .widget-output)"
CONTROLS = ".widget-slider, .widget-dropdown select, .widget-button, .widget-checkbox input"


def _explorers_in(nb: dict[str, Any]) -> int:
    """How many explorers the executed notebook displayed (widget views whose text is the explorer's)."""
    return sum(runner.WIDGET_VIEW in o.get("data", {}) and "".join(o["data"].get("text/plain", "")).startswith(runner.EXPLORER_PREFIX)
               for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])


def _figure(explorer: Any) -> str:
    return explorer.locator(".widget-output img").first.get_attribute("src") or ""


def _change_one_control(explorer: Any) -> str:
    """Move the first slider by one step (or choose the next option), press Run if present; say what was done."""
    slider = explorer.locator(".widget-slider").first
    if slider.count():
        handle, readout = slider.locator(".noUi-handle").first, slider.locator(".widget-readout").first
        before = readout.inner_text()
        handle.focus()
        handle.press("ArrowRight")
        if readout.inner_text() == before:  # already at its maximum
            handle.press("ArrowLeft")
        done = f"slider {before} -> {readout.inner_text()}"
    else:
        select = explorer.locator(".widget-dropdown select").first
        options = select.locator("option").all_inner_texts()
        current = select.input_value()
        value = next(o for o in select.locator("option").evaluate_all("os => os.map(o => o.value)") if o != current)
        select.select_option(value)
        done = f"dropdown {options} -> {value}"
    run = explorer.locator(".widget-button", has_text="Run")
    if run.count():
        run.first.click()
        done += ", Run"
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPLORER_NOTEBOOKS)
def test_notebook_in_jupyterlab(name: str, lab_url: str, browser: Any, screenshots: Path) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        path = f"notebooks/{name}.ipynb"  # a workspace of its own, so no other notebook is restored beside it
        page.goto(f"{lab_url}/lab/workspaces/{name}/tree/{path}?reset", wait_until="domcontentloaded")
        page.wait_for_function(KERNEL_IDLE, arg=path, timeout=60_000)
        page.evaluate(RUN_ALL, CELL_BUDGET_MS)
        page.wait_for_function(KERNEL_IDLE, arg=path, timeout=30_000)
        nb = page.evaluate(NOTEBOOK_JSON)

        errors = [f"{o.get('ename')}: {o.get('evalue')}" for c in nb["cells"] if c["cell_type"] == "code"
                  for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, f"{name}: cells failed in JupyterLab: {errors}"
        unrun = [c["source"][:60] for c in nb["cells"] if c["cell_type"] == "code" and c["execution_count"] is None]
        assert not unrun, f"{name}: cells not run: {unrun}"
        text = page.locator(".jp-NotebookPanel").first.inner_text()
        shown = [e for e in WIDGET_ERRORS if e in text]
        assert not shown, f"{name}: JupyterLab says {shown}"

        explorers = page.locator(EXPLORER)
        expected = _explorers_in(nb)
        assert expected >= 1 and explorers.count() == expected, f"{name}: {explorers.count()} explorers rendered, {expected} displayed"
        for i in range(expected):
            explorer = explorers.nth(i)
            explorer.scroll_into_view_if_needed()
            assert explorer.locator(CONTROLS).count() >= 1, f"{name}: explorer {i} shows no controls"
            page.wait_for_function("e => e.querySelector('.widget-output img')", arg=explorer.element_handle(), timeout=FIGURE_BUDGET_MS)
            before = _figure(explorer)
            explorer.screenshot(path=str(screenshots / f"{name}_explorer{i}_before.png"))
            done = _change_one_control(explorer)
            page.wait_for_function(
                "([e, before]) => { const img = e.querySelector('.widget-output img'); return img && img.src !== before; }",
                arg=[explorer.element_handle(), before], timeout=FIGURE_BUDGET_MS,
            )
            explorer.screenshot(path=str(screenshots / f"{name}_explorer{i}_after.png"))
            print(f"{name} explorer {i}: {done}: figure changed")
        text = page.locator(".jp-NotebookPanel").first.inner_text()
        assert not [e for e in WIDGET_ERRORS if e in text], f"{name}: a widget error appeared after the interaction"
    finally:
        page.screenshot(path=str(screenshots / f"{name}.png"))
        with contextlib.suppress(Exception):  # free the kernel's memory for the next notebook
            page.evaluate(SHUTDOWN_KERNEL)
        page.close()
