"""The installed shape of xpnet: one package, its public names, its version, and a Ctrl-C while
the command starts (save and load: test_package_save_load.py).

xpnet's folders (backends/, model/, train/) install as xpnet.backends, xpnet.model and
xpnet.train, so a user's own model.py or train.py, which most ML projects have, cannot
shadow them; and `from xpnet import test` in a user's test file is not collected as a test.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import xpnet
from xpnet.train.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_python(args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # xpnet from this checkout, installed or not
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_public_names_are_there():
    for name in xpnet.__all__:
        assert getattr(xpnet, name) is not None, name
    assert xpnet.test is xpnet.train.test and xpnet.Network is xpnet.model.Network


def test_a_users_own_model_train_and_backends_modules_do_not_shadow_xpnet(tmp_path):
    for name in ("model", "train", "backends"):  # the user's code, with the names xpnet's folders have
        (tmp_path / f"{name}.py").write_text(f"raise RuntimeError('xpnet imported the user\\'s {name}.py')\n")
    (tmp_path / "script.py").write_text(textwrap.dedent("""
        import numpy as np
        import xpnet
        X = np.random.default_rng(0).standard_normal((200, 2))
        y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
        model = xpnet.Network.from_sizes([2, 16, 2], xpnet.resolve_backend("numpy"), activation="tanh",
                                         output="identity", loss="cross_entropy", seed=0)
        xpnet.learn(model, (X, y), epochs=30, batch_size=20, lr=0.5, log=None)
        print("accuracy", float(np.mean(xpnet.test(model, X) == y)))
    """))
    done = run_python(["script.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) > 0.8


def test_importing_test_into_a_users_test_file_does_not_collect_it(tmp_path):
    (tmp_path / "test_mine.py").write_text("from xpnet import learn, test\n\n\ndef test_mine():\n    assert test\n")
    done = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_version_is_printed_and_is_the_packages(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"xpnet {xpnet.__version__}"
    try:
        assert importlib.metadata.version("xpnet") == xpnet.__version__
    except importlib.metadata.PackageNotFoundError:
        pass  # run from a checkout: no installed metadata to agree with


def test_nothing_but_xpnet_is_installed_at_the_top_of_site_packages(tmp_path):
    """In a fresh interpreter away from this checkout, the installed xpnet is found and none of
    the generic names its folders have in the repository is."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = "import importlib.util as u; print(*(u.find_spec(n) is not None for n in ('xpnet', 'train', 'model', 'backends')))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    found = dict(zip(("xpnet", "train", "model", "backends"), done.stdout.split()))
    if found.get("xpnet") != "True":
        pytest.skip("xpnet is not installed in this Python (run from a checkout): nothing to inspect")
    assert found == {"xpnet": "True", "train": "False", "model": "False", "backends": "False"}, done.stderr


def test_python_dash_m_xpnet_is_the_command(tmp_path):
    done = run_python(["-m", "xpnet", "--version"], tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"xpnet {xpnet.__version__}", done.stderr


def test_the_command_loads_nothing_heavy_before_it_can_catch_ctrl_c(tmp_path):
    """`import xpnet` loads its names on first use, so the entry point's `try` covers numpy's load."""
    result = run_python(["-c", "import sys, xpnet.command; print(sorted({'numpy', 'scipy', 'PIL'} & set(sys.modules)))"],
                        tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


def test_ctrl_c_while_the_command_loads_is_one_line_and_exit_130(monkeypatch, capsys):
    import builtins

    from xpnet.command import main as command

    real = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "xpnet.train.cli":
            raise KeyboardInterrupt
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert command(["backends"]) == 130
    monkeypatch.setattr(builtins, "__import__", real)
    assert capsys.readouterr().err == "xpnet: interrupted\n"
    assert command(["backends"]) == 0  # loaded for real, it runs


@pytest.fixture
def python_handles_ctrl_c():
    """SIGINT as Python sets it in a terminal, whatever this test run was started with (a shell
    starts a background job with SIGINT ignored, which the command rightly leaves alone)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_that_numpy_turns_into_an_import_error_is_still_one_line_and_exit_130(monkeypatch, capsys,
                                                                                    python_handles_ctrl_c):
    """Found by the attack: a SIGINT inside numpy's import of `datetime` came out as numpy's
    ImportError ("Importing the numpy C-extensions failed"), a traceback and exit 1."""
    import builtins
    import signal

    from xpnet.command import main as command

    real = builtins.__import__

    def swallowed(name, *args, **kwargs):
        if name == "xpnet.train.cli":
            try:
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # what a Ctrl-C here runs
            except KeyboardInterrupt:
                raise ImportError('PyCapsule_Import could not import module "datetime"') from None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", swallowed)
    assert command(["backends"]) == 130
    assert capsys.readouterr().err == "xpnet: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back

    def broken(name, *args, **kwargs):
        if name == "xpnet.train.cli":
            raise ImportError("a broken install, no Ctrl-C")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(ImportError, match="broken install"):  # a real failure is not called an interrupt
        command(["backends"])


def test_ctrl_c_while_python_m_xpnet_imports_its_entry_point_is_one_line_and_exit_130(tmp_path):
    """Found by the attack: a SIGINT during `python -m xpnet`'s own `from xpnet.command import
    main` was Python's KeyboardInterrupt traceback and exit -2."""
    interrupt_that_import = (
        "import runpy, sys\n"
        "class CtrlC:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'xpnet.command':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        "sys.argv = ['xpnet', 'backends']\n"
        "runpy.run_module('xpnet', run_name='__main__', alter_sys=True)\n")
    result = run_python(["-c", interrupt_that_import], tmp_path)
    assert (result.returncode, result.stderr) == (130, "xpnet: interrupted\n")


def test_ctrl_c_while_the_command_reads_its_arguments_is_one_line_and_exit_130(monkeypatch, capsys):
    """Found by the attack: a SIGINT while argparse compiled its patterns (before the command's
    own `try`) was a traceback."""
    import xpnet.train.cli as cli
    from xpnet.command import main as command

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["backends"]) == 130
    assert capsys.readouterr().err == "xpnet: interrupted\n"
    monkeypatch.setattr(cli, "main", lambda argv=None: interrupted())  # one that escapes the command itself
    assert command(["backends"]) == 130
    assert capsys.readouterr().err == "xpnet: interrupted\n"


def extension_init_interrupted():
    """What matplotlib's ft2font raises when a Ctrl-C lands while it initialises."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as ctrl_c:
        raise ImportError("initialization failed") from ctrl_c


def test_ctrl_c_that_an_extension_turns_into_its_own_error_is_a_ctrl_c(monkeypatch, capsys, tmp_path):
    """Found by the attack: a SIGINT while the report loaded matplotlib came out as ft2font's
    ImportError ("initialization failed") and a traceback."""
    import xpnet.train.cli as cli
    import xpnet.train.report as report
    from toy_runs import make_npz, train_args

    monkeypatch.setattr(report, "_headless", extension_init_interrupted)
    run = tmp_path / "run"
    assert cli.main(train_args(make_npz(tmp_path), run, "--epochs", "1")) == 130
    err = capsys.readouterr().err
    assert err == (f"xpnet: interrupted while writing the report; training had finished, and "
                   f"{run / 'model.safetensors'} holds the trained network: xpnet report {run} draws the report\n"), err
    monkeypatch.setattr(cli, "build_parser", extension_init_interrupted)  # outside any run: the plain line
    assert cli.main(["backends"]) == 130
    assert capsys.readouterr().err == "xpnet: interrupted\n"


def test_an_error_that_no_ctrl_c_caused_keeps_its_traceback(monkeypatch):
    import xpnet.train.cli as cli

    def broken():
        raise ImportError("initialization failed")

    monkeypatch.setattr(cli, "build_parser", broken)
    with pytest.raises(ImportError, match="initialization failed"):  # a bug is not called an interrupt
        cli.main(["backends"])


def test_ctrl_c_that_lands_in_a_weakref_callback_still_stops_the_command(monkeypatch, capsys, python_handles_ctrl_c):
    """Found by the attack: a SIGINT while the garbage collector ran a weakref callback was
    printed as "Exception ignored ... KeyboardInterrupt" and lost: the run went on, exit 0."""
    import xpnet.train.cli as cli
    from xpnet.command import main as command

    class CtrlCWhenCollected:
        def __del__(self):
            raise KeyboardInterrupt  # what a SIGINT landing in a callback the collector runs does

    def a_command_that_runs_on(argv=None):
        CtrlCWhenCollected()  # collected at once: its KeyboardInterrupt is unraisable
        end = time.monotonic() + 5
        while time.monotonic() < end:  # the command's own work, where the Ctrl-C must land instead
            pass
        return 0

    monkeypatch.setattr(cli, "main", a_command_that_runs_on)
    assert command(["train"]) == 130
    assert capsys.readouterr().err == "xpnet: interrupted\n"


def test_a_ctrl_c_lost_as_a_command_finishes_is_not_sent_after_it(monkeypatch, python_handles_ctrl_c):
    """The Ctrl-C is sent again 10 ms later; a command that has finished by then returns its
    code, and nothing lands after it, outside every handler (a traceback at exit)."""
    import xpnet.train.cli as cli
    from xpnet.command import RESEND_AFTER_S
    from xpnet.command import main as command

    class CtrlCWhenCollected:
        def __del__(self):
            raise KeyboardInterrupt

    def a_command_that_ends_at_once(argv=None):
        CtrlCWhenCollected()
        return 0

    monkeypatch.setattr(cli, "main", a_command_that_ends_at_once)
    assert command(["train"]) == 0
    time.sleep(20 * RESEND_AFTER_S)  # a KeyboardInterrupt sent now would fail this test
