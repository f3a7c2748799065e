"""Bad input through the command line: one line on stderr, a non-zero exit, nothing half-written.

The loaders' own tests (test_data_*.py, test_checkpoint_format.py) hold each message; these
tests hold what the user meets at the command line, and that a refused input leaves no run
folder, no temp file and no damaged checkpoint behind. A full disk is simulated by making
the atomic writer's write (or fsync, or rename) fail with ENOSPC half-way.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import xpnet.train.files as files
from xpnet.backends import resolve_backend
from xpnet.model import Network
from xpnet.train.checkpoints import load_checkpoint, save, save_checkpoint
from xpnet.train.files import OutputError, atomic_write

from test_cli import assert_one_line_error, run_cli


def toy(folder: Path, name: str = "toy.npz", features: int = 6, **override) -> Path:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0)
    arrays = dict(X=X[:60], y=y[:60], X_test=X[60:], y_test=y[60:])
    arrays.update(override)
    path = folder / name
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def train_argv(data: str, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", data, "--epochs", "2", "--layers", "8", "--out", str(out), "--no-progress",
            "--backend", "numpy", *extra]


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


@pytest.fixture
def run(capsys, tmp_path):
    """A finished two-epoch run on 6-feature, 4-class data."""
    code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", tmp_path / "run"))
    assert code == 0, err
    return tmp_path / "run"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- data ------------------------------------------------------------------------------

@pytest.mark.parametrize("override, needle", [
    (dict(y=np.zeros(59, np.int64)), "59 entries for 60 samples"),
    (dict(X=np.zeros((0, 6), np.float32), y=np.zeros(0, np.int64), X_test=None, y_test=None), "empty"),
    (dict(X=np.full((60, 6), np.nan, np.float32)), "NaN"),
    (dict(X_test=np.full((20, 6), np.inf, np.float32)), "infinite"),
    (dict(y=-np.ones(60, np.int64)), "negative label"),
    (dict(y=np.array(["a"] * 60)), "integer labels or float targets"),
], ids=["length-mismatch", "empty", "nan-inputs", "inf-test-inputs", "negative-labels", "string-labels"])
def test_bad_data_file_is_one_line_and_creates_no_run_folder(capsys, tmp_path, override, needle):
    data = toy(tmp_path, **override)
    code, _, err = run_cli(capsys, *train_argv(f"npz:{data}", tmp_path / "run"))
    assert_one_line_error(code, err, needle, "toy.npz")
    assert not (tmp_path / "run").exists()


def test_float_class_labels_are_not_silently_trained_as_one_output(capsys, tmp_path):
    """y = [0., 2., 1., ...] read as floats means regression; under cross-entropy a 1-output
    network's loss is 0 whatever it does, so training would "succeed" and learn nothing.
    Asked for cross-entropy: one line, before anything is written. Without --loss, float
    targets are regression (issue 16), said in the log, with a warning that whole-number
    targets might be classes."""
    data = toy(tmp_path)
    with np.load(data) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(data, **dict(arrays, y=arrays["y"].astype(np.float32), y_test=arrays["y_test"].astype(np.float32)))
    code, out, err = run_cli(capsys, *train_argv(f"npz:{data}", tmp_path / "run", "--loss", "cross_entropy"))
    assert_one_line_error(code, err, "float", "integer", "quadratic")
    assert not (tmp_path / "run").exists()
    # the default: regression under the quadratic loss, said, with the warning
    code, out, err = run_cli(capsys, *train_argv(f"npz:{data}", tmp_path / "reg", "--activation", "tanh"))
    assert code == 0, err
    assert "regression (float targets): loss quadratic" in out and "-> 1  tanh  quadratic" in out
    assert "warning: every target" in out and "save them as integers" in out


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray, images_magic: int = 0x803) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", images_magic, *images.shape)
                                                     + images.astype(np.uint8).tobytes())
    (folder / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, len(labels))
                                                     + labels.astype(np.uint8).tobytes())


@pytest.mark.parametrize("damage, needle", [
    ("magic", "bad magic number"),
    ("truncated", "truncated"),
    ("labels", "outside 0..9"),
])
def test_damaged_idx_files_through_the_cli_are_one_line(capsys, tmp_path, damage, needle):
    images, labels = np.zeros((5, 28, 28), np.uint8), np.arange(5)
    write_idx(tmp_path / "idx", images, labels if damage != "labels" else labels + 8,
              images_magic=0x801 if damage == "magic" else 0x803)
    if damage == "truncated":
        path = tmp_path / "idx" / "train-images-idx3-ubyte"
        path.write_bytes(path.read_bytes()[:-1])
    code, _, err = run_cli(capsys, *train_argv(f"idx:{tmp_path / 'idx'}", tmp_path / "run"))
    assert_one_line_error(code, err, needle, "idx1-ubyte" if damage == "labels" else "idx3-ubyte")
    assert not (tmp_path / "run").exists()


# -- evaluate and predict: a checkpoint that does not fit --------------------------------

def test_evaluate_on_data_of_another_width_is_one_line(capsys, tmp_path, run):
    before = snapshot(run)
    code, _, err = run_cli(capsys, "evaluate", str(run), "--data", f"npz:{toy(tmp_path, 'w4.npz', features=4)}",
                           "--backend", "numpy")
    assert_one_line_error(code, err, "4 features", "takes 6")
    assert snapshot(run) == before  # no confusion matrix of a model that was never run


def test_evaluate_on_labels_beyond_the_model_classes_is_one_line(capsys, tmp_path, run):
    data = toy(tmp_path, "nine.npz", y_test=np.arange(20) % 9)
    code, _, err = run_cli(capsys, "evaluate", str(run), "--data", f"npz:{data}", "--backend", "numpy")
    assert_one_line_error(code, err, "tells 4 classes", "has 9")


def test_a_single_class_is_one_line(capsys, tmp_path):
    """One class: a one-output softmax is always right and its loss always 0; nothing to learn.
    Said of the training data, before a network or a run folder is made."""
    data = toy(tmp_path, "one.npz", y=np.zeros(60, np.int64), y_test=np.zeros(20, np.int64))
    code, _, err = run_cli(capsys, *train_argv(f"npz:{data}", tmp_path / "run"))
    assert_one_line_error(code, err, "holds a single class (0)", "at least two")
    assert not (tmp_path / "run").exists()


def test_evaluate_on_fewer_classes_than_the_model_is_one_line(capsys, tmp_path, run):
    """Labels 0..1 fit inside a 4-class model's range, so only the class count tells."""
    data = toy(tmp_path, "two.npz", y_test=np.arange(20) % 2, y=np.arange(60) % 2)
    code, _, err = run_cli(capsys, "evaluate", str(run), "--data", f"npz:{data}", "--backend", "numpy")
    assert_one_line_error(code, err, "tells 4 classes", "has 2")


def test_evaluate_takes_the_runs_own_data_and_says_when_it_has_no_held_out_part(capsys, tmp_path, run):
    code, out, err = run_cli(capsys, "evaluate", str(run), "--backend", "numpy")
    assert code == 0, err
    assert "on 20 held-out samples" in out  # the run's npz, not the default letters
    whole = toy(tmp_path, "whole.npz", X_test=None, y_test=None)
    code, out, err = run_cli(capsys, "evaluate", str(run), "--data", f"npz:{whole}", "--backend", "numpy")
    assert code == 0, err
    assert "held-out samples" not in out and "60 samples of" in out
    assert "(no held-out part: the run may have trained on them)" in out


def test_the_same_classes_in_another_order_are_relabelled_by_name(capsys, tmp_path):
    named = toy(tmp_path, "named.npz", classes=np.array(["a", "b", "c", "d"]))
    code, _, err = run_cli(capsys, *train_argv(f"npz:{named}", tmp_path / "run"))
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--backend", "numpy")
    assert code == 0, err
    as_trained = out.splitlines()[0].split("accuracy")[1]
    arrays = dict(np.load(named))
    swap = np.array([1, 0, 2, 3])  # a <-> b: the same names, listed in another order
    arrays.update(classes=np.array(["b", "a", "c", "d"]), y=swap[arrays["y"]], y_test=swap[arrays["y_test"]])
    np.savez(tmp_path / "permuted.npz", **arrays)
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--data", f"npz:{tmp_path / 'permuted.npz'}",
                             "--backend", "numpy")
    assert code == 0, err
    assert out.splitlines()[0].split("accuracy")[1] == as_trained


def test_a_regression_run_on_class_labels_is_one_line(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 6)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", X=X[:60], y=X[:60, 0], X_test=X[60:], y_test=X[60:, 0])
    code, _, err = run_cli(capsys, *train_argv(f"npz:{tmp_path / 'reg.npz'}", tmp_path / "run", "--loss", "quadratic"))
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--data", f"npz:{toy(tmp_path)}",
                           "--backend", "numpy")
    assert_one_line_error(code, err, "is a regression model")


def test_a_run_evaluates_from_another_folder(capsys, tmp_path, monkeypatch):
    """The run records its data's absolute path, so a relative --data still loads from elsewhere."""
    monkeypatch.chdir(tmp_path)
    toy(tmp_path, "here.npz")
    code, _, err = run_cli(capsys, *train_argv("npz:here.npz", tmp_path / "run"))
    assert code == 0, err
    monkeypatch.chdir("/")
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--backend", "numpy")
    assert code == 0, err
    assert "on 20 held-out samples" in out


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    """`xpnet train ... | head -1`: the pipe closes under a running job."""
    import subprocess
    import sys

    argv = train_argv(f"npz:{toy(tmp_path)}", tmp_path / "run", "--epochs", "50")
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    proc.stdout.readline()
    proc.stdout.close()  # the reader leaves
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def tampered(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) == 1
    return data.replace(old, new)


@pytest.mark.parametrize("damage, needle", [
    ("truncated", "damaged"),
    ("header-value", "integrity check"),
    ("header-json", "not JSON"),
    ("tensor-bytes", "integrity check"),
])
def test_damaged_checkpoint_is_one_line_for_evaluate_and_predict(capsys, tmp_path, run, damage, needle):
    data = (run / "model.safetensors").read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    if damage == "truncated":
        data = data[:header_end + 10]
    elif damage == "header-value":  # a plausible edit: claim more epochs, same length
        data = tampered(data, b'"epochs":"2"', b'"epochs":"9"')
    elif damage == "header-json":
        data = data[:8] + b"x" + data[9:]
    else:
        data = data[:-4] + bytes(b ^ 0xFF for b in data[-4:])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data)
    code, _, err = run_cli(capsys, "evaluate", str(bad), "--data", f"npz:{toy(tmp_path)}", "--backend", "numpy")
    assert_one_line_error(code, err, "bad.safetensors", needle)
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    code, out, err = run_cli(capsys, "predict", str(bad), str(img), "--backend", "numpy")
    assert_one_line_error(code, err, "bad.safetensors", needle)
    assert out == ""
    assert not (tmp_path / "confusion.json").exists()


def test_predict_names_the_file_that_is_not_an_image_and_reads_the_rest(capsys, tmp_path):
    numpy = resolve_backend("numpy")
    save_checkpoint(Network.from_sizes([784, 26], numpy), tmp_path / "m.safetensors",
                    {"classes": [chr(ord("A") + i) for i in range(26)]})
    good, bad, missing = tmp_path / "good.png", tmp_path / "notes.png", tmp_path / "missing.png"
    picture = np.zeros((40, 30), np.uint8)
    picture[8:32, 12:18] = 255
    Image.fromarray(picture).save(good)
    bad.write_text("not an image at all\n")
    code, out, err = run_cli(capsys, "predict", str(tmp_path / "m.safetensors"), str(bad), str(good), str(missing),
                             "--backend", "numpy")
    assert code != 0
    assert len(out.splitlines()) == 1 and out.startswith(f"{good}: ")
    errors = err.splitlines()
    assert len(errors) == 2 and "Traceback" not in err
    assert errors[0].startswith(f"{bad}: error: cannot read image") and "PNG or JPEG" in errors[0]
    assert errors[1].startswith(f"{missing}: error: cannot read image")


# -- settings: refused before anything is written ----------------------------------------

@pytest.mark.parametrize("argv, needle, usage", [
    (["--activation", "swish"], "unknown activation", False),
    (["--loss", "hinge"], "unknown loss", False),
    (["--optimizer", "lion"], "unknown optimizer", False),
    (["--init", "zeros"], "unknown init", False),
    (["--lr", "0"], "--lr", True),
    (["--lr", "-0"], "--lr", True),
    (["--lr", "nan"], "--lr", True),
    (["--lr", "inf"], "--lr", True),
    (["--lr", "1e999"], "--lr", True),
    (["--batch-size", "-3"], "--batch-size", True),
    (["--epochs", "0"], "--epochs", True),
    (["--patience", "0"], "--patience", True),
    (["--train-samples", "0"], "--train-samples", True),
    (["--layers", "8,0"], "--layers", True),
    (["--seed", "-1"], "seed", False),
    (["--dtype", "float16"], "--dtype", True),
], ids=lambda v: "-".join(v) if isinstance(v, list) else None)
def test_bad_settings_are_one_line_and_write_nothing(capsys, tmp_path, argv, needle, usage):
    code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", tmp_path / "run"), *argv)
    assert_one_line_error(code, err, needle)
    assert code == (2 if usage else 1)
    assert err.startswith("xpnet train: error:" if usage else "xpnet: error:")
    assert not (tmp_path / "run").exists()


def test_output_that_is_a_file_is_one_line(capsys, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", tmp_path / "taken"))
    assert_one_line_error(code, err, "taken", "--out")
    assert (tmp_path / "taken").read_text() == "a file, not a folder"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_output_folder_is_one_line(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", locked / "run"))
        assert_one_line_error(code, err, "--out")
        code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", locked))
        assert_one_line_error(code, err, "not writable", "--out")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


# -- a full disk while saving ------------------------------------------------------------

class FullDisk:
    """From the `after`+1-th save of `folder/name` on, the atomic writer fails at `stage`:
    `write` puts half the bytes in the temp file and raises ENOSPC, as a disk filling up
    does; `fsync` raises ENOSPC after the write; `replace` raises EIO at the rename.

    It hooks `os.fdopen`, `os.fsync` and `os.replace` as train/files.py calls them, and
    recognises the writer's temp file (`.NAME.*.tmp` next to the target) by its inode.
    """

    def __init__(self, monkeypatch, folder: Path, name: str, after: int = 0, stage: str = "write"):
        self.folder, self.name, self.after, self.stage = Path(folder), name, after, stage
        self.saves, self.doomed, self.partial = 0, {}, []
        real_fdopen, real_fsync, real_replace = os.fdopen, os.fsync, os.replace
        disk = self

        class HalfWriter:
            def __init__(self, f, tmp):
                self.f, self.tmp = f, tmp

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[:len(data) // 2])
                self.f.flush()
                disk.partial.append((self.tmp, os.path.getsize(self.tmp)))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, attr):
                return getattr(self.f, attr)

        def fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            tmp = self._temp_of(fd)
            if tmp is None:
                return f
            self.saves += 1
            if self.saves <= self.after:
                return f
            self.doomed[fd] = tmp
            return HalfWriter(f, tmp) if self.stage == "write" else f

        def fsync(fd):
            if fd in self.doomed and self.stage == "fsync":
                self.partial.append((self.doomed[fd], os.path.getsize(self.doomed[fd])))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_fsync(fd)

        def replace(src, dst):
            if str(src) in map(str, self.doomed.values()) and self.stage == "replace":
                self.partial.append((str(src), os.path.getsize(src)))
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real_replace(src, dst)

        monkeypatch.setattr(files.os, "fdopen", fdopen)
        monkeypatch.setattr(files.os, "fsync", fsync)
        monkeypatch.setattr(files.os, "replace", replace)

    def _temp_of(self, fd: int) -> str | None:
        """The writer's temp file for our target that `fd` is open on, if it is one."""
        try:
            inode = os.fstat(fd).st_ino
        except OSError:
            return None
        for tmp in self.folder.glob(f".{self.name}.*.tmp"):
            if tmp.stat().st_ino == inode:
                return str(tmp)
        return None


@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, stage):
    target = tmp_path / "model.safetensors"
    atomic_write(target, b"old checkpoint")
    disk = FullDisk(monkeypatch, tmp_path, "model.safetensors", stage=stage)
    with pytest.raises(OutputError) as info:
        atomic_write(target, b"new checkpoint, longer than the old one" * 1000)
    message = str(info.value)
    assert "\n" not in message and str(target) in message and "choose another --out" in message
    assert os.strerror(errno.ENOSPC if stage != "replace" else errno.EIO) in message
    assert disk.partial and disk.partial[0][1] > 0  # something half-written existed...
    assert not os.path.exists(disk.partial[0][0])  # ...and is gone
    assert target.read_bytes() == b"old checkpoint"
    assert temp_files(tmp_path) == []


def test_the_api_save_on_a_full_disk_advises_a_path_not_a_flag(tmp_path, monkeypatch):
    """`xpnet.save` is given a path: its failure must not send the caller to a CLI flag."""
    model = Network.from_sizes([3, 4, 2], resolve_backend("numpy"), seed=0)
    FullDisk(monkeypatch, tmp_path, "model.safetensors")
    with pytest.raises(OutputError) as info:
        save(model, tmp_path / "model.safetensors")
    message = str(info.value)
    assert "\n" not in message and "another path" in message and "--out" not in message
    assert temp_files(tmp_path) == []


def test_full_disk_while_training_keeps_the_last_checkpoint_and_resumes_after(capsys, tmp_path, monkeypatch):
    data = f"npz:{toy(tmp_path)}"
    run = tmp_path / "run"
    disk = FullDisk(monkeypatch, run, "model.safetensors", after=2)  # epochs 1 and 2 save, epoch 3 hits the full disk
    code, out, err = run_cli(capsys, *train_argv(data, run, "--epochs", "5"))
    assert_one_line_error(code, err, "model.safetensors", "No space left on device", "free space")
    assert disk.partial and disk.partial[0][1] > 0
    assert temp_files(run) == []
    assert "epoch 3/5" in out and "epoch 4/5" not in out  # it stopped at the failed save
    numpy = resolve_backend("numpy")
    net, meta = load_checkpoint(run, numpy)
    assert meta["epochs"] == 2
    assert [r["epoch"] for r in json.loads((run / "history.json").read_text())][:2] == [1, 2]
    monkeypatch.undo()  # space freed: the run carries on and ends as if nothing happened
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--no-progress")
    assert code == 0, err
    code, _, err = run_cli(capsys, *train_argv(data, tmp_path / "whole", "--epochs", "5"))
    assert code == 0, err
    a, b = load_checkpoint(run, numpy)[0], load_checkpoint(tmp_path / "whole", numpy)[0]
    for p, q in zip(a.params, b.params):
        assert p.tobytes() == q.tobytes()
    assert [r["loss"] for r in json.loads((run / "history.json").read_text())] == \
        [r["loss"] for r in json.loads((tmp_path / "whole" / "history.json").read_text())]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_xpnet_writes_are_readable_like_any_other(tmp_path):
    """mkstemp makes 0600 files; a checkpoint renamed from one must still get the usual
    permissions (what the umask allows), or a shared run folder is unreadable to others."""
    umask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "model.safetensors", b"x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name, content, expected", [
    ("data.csv", b"a,b\n1,2\n", "is not an .npz archive (nor a zip file at all)"),
    ("noise.npz", bytes(range(7, 107)), "is not an .npz archive (nor a zip file at all)"),
    ("pk.npz", b"PKxxxx garbage", "is not an .npz archive (nor a zip file at all)"),
    ("empty.npz", b"", "is empty"),
], ids=["csv", "random-bytes", "PK-but-no-zip", "empty"])
def test_a_file_that_is_no_npz_is_not_said_to_hold_python_objects(capsys, tmp_path, name, content, expected):
    """numpy reads a file with no zip or .npy header as a pickle, and refuses it as 'Python
    objects': a CSV given as npz: was told it held objects, which sends the user the wrong way."""
    path = tmp_path / name
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{path}", "--no-progress", "--out", str(tmp_path / "run"))
    assert code == 1 and expected in err and "Python objects" not in err, err


def test_npz_and_folder_sources_given_the_other_kind_say_which_to_use(capsys, tmp_path):
    archive = tmp_path / "d.npz"
    np.savez(archive, X=np.zeros((4, 2)), y=np.arange(4) % 2)
    _, _, err = run_cli(capsys, "train", "--data", f"folder:{archive}", "--no-progress", "--out", str(tmp_path / "a"))
    assert "is a file, not a folder" in err and f"npz:{archive}" in err, err
    _, _, err = run_cli(capsys, "train", "--data", f"npz:{tmp_path}", "--no-progress", "--out", str(tmp_path / "b"))
    assert "is a folder, not an .npz archive" in err and f"folder:{tmp_path}" in err, err


def test_cli_warnings_are_one_line(tmp_path):
    """A skipped image in a folder: data set is a warning, printed as one xpnet line, not
    Python's two (the warning's source file and line, then the code that raised it)."""
    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(3):
            ink = np.zeros((28, 28), np.uint8)
            ink[5 + i:20, 8:20 - i] = 255
            Image.fromarray(ink).save(tmp_path / "imgs" / name / f"{i}.png")
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"not an image")
    argv = ["train", "--data", f"folder:{tmp_path / 'imgs'}", "--epochs", "1", "--no-progress",
            "--backend", "numpy", "--out", str(tmp_path / "run")]
    done = subprocess.run([sys.executable, "-m", "xpnet", *argv], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], timeout=120)  # pytest would catch the warning itself
    err = done.stderr
    assert done.returncode == 0, err
    warned = [line for line in err.splitlines() if "skipped" in line]
    assert warned and warned[0].startswith("xpnet: warning: ") and "broken.png" in warned[0], err
    assert "UserWarning" not in err and ".py:" not in err, err


def test_a_negative_parity_seed_is_one_line(capsys):
    """numpy's generators refuse a negative seed with a traceback from deep inside them."""
    code, _, err = run_cli(capsys, "parity", "--seed", "-1")
    assert code == 2 and err.count("\n") == 1 and "--seed" in err and "-1" in err, err


def test_classes_training_never_shows_are_a_warning(capsys, tmp_path):
    """Labels 0 and 7 make an 8-output network; held-out labels the training set lacks can
    only be wrong. Legal, almost always a mistake: one warning each, and training goes on."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    y = np.where(X[:, 0] > 0, 7, 0)
    data = tmp_path / "gaps.npz"
    np.savez(data, X=X, y=y, X_test=X[:10], y_test=np.array([5, 6] * 5))
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{data}", "--epochs", "1", "--layers", "4",
                             "--no-progress", "--backend", "numpy", "--out", str(tmp_path / "run"))
    assert code == 0, err
    warned = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warned) == 2, out
    assert "6 of 8 classes have no training sample (1, 2, 3, 4, 5, ...)" in warned[0]
    assert "held-out set has samples of classes training never shows (5, 6)" in warned[1]
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(np.int64))
    code, out, _ = run_cli(capsys, "train", "--data", f"npz:{data}", "--epochs", "1", "--layers", "4",
                           "--no-progress", "--backend", "numpy", "--out", str(tmp_path / "run3"))
    assert code == 0 and "warning:" not in out, out


def test_evaluate_with_an_unwritable_out_says_so_before_scoring(capsys, tmp_path):
    """It used to print the accuracy line, then fail on --out: the error alone, first."""
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(np.int64))
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{data}", "--epochs", "1", "--layers", "4",
                           "--no-progress", "--backend", "numpy", "--out", str(run))
    assert code == 0, err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run_cli(capsys, "evaluate", str(run), "--out", str(blocker / "report"))
    assert code == 1 and out == "" and err.count("\n") == 1, (out, err)


def test_a_regression_run_folder_has_its_loss_curve_too(capsys, tmp_path):
    """The README promises pictures in every run folder; regression had none."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2)).astype(np.float32)
    data = tmp_path / "r.npz"
    np.savez(data, X=X, y=(X[:, 0] - X[:, 1]).astype(np.float32))
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{data}", "--loss", "quadratic", "--epochs", "2",
                             "--layers", "4", "--no-progress", "--backend", "numpy", "--out", str(run))
    assert code == 0, err
    assert (run / "curves.png").stat().st_size > 1000 and f"wrote {run / 'curves.png'}" in out
    assert not (run / "confusion.png").exists()
