"""Property tests: whatever bytes, pictures or arguments come in, xpnet answers with its
documented one-line error (an `XpnetError`, or argparse's exit 2) or a correct result:
never another exception, never a hang, never data that was not in the file.

Each test is bounded (`max_examples`, a per-example deadline: tests/fuzz_settings.py) so the
file runs in seconds; a failure prints the smallest input hypothesis found, which is the bug
report. Checkpoints: test_fuzz_checkpoints.py.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from xpnet.train.cli import main
from xpnet.train.data import DataError
from xpnet.train.data.glyph import load_image, preprocess_image
from xpnet.train.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

from fuzz_settings import FAST, SLOWER


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# -- IDX files ---------------------------------------------------------------------------

def idx_bytes(magic: int, dims: tuple[int, ...], body: bytes) -> bytes:
    return struct.pack(f">I{len(dims)}I", magic, *dims) + body


def check_idx(path: Path, raw: bytes, magic: int, compressed: bool) -> None:
    """read_idx returns exactly the file's body, or raises DataError; nothing else."""
    path.write_bytes(gzip.compress(raw) if compressed else raw)
    try:
        arr = read_idx(path, magic)
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    n_dims = raw[3]
    assert arr.dtype == np.uint8 and arr.ndim == n_dims
    assert arr.tobytes() == raw[4 + 4 * n_dims:], "the array must be the file's bytes, no more, no less"


@FAST
@given(raw=st.binary(max_size=300), images=st.booleans(), compressed=st.booleans())
def test_idx_reader_on_random_bytes(scratch, raw, images, compressed):
    check_idx(scratch / "random-idx", raw, IMAGES_MAGIC if images else LABELS_MAGIC, compressed)


@FAST
@given(dims=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 40), min_size=1, max_size=3),
       n_body=st.integers(0, 400), cut=st.integers(-20, 20), flips=st.lists(st.integers(0, 20), max_size=3),
       compressed=st.booleans())
@example(dims=[2**32 - 1, 4096, 4096], n_body=10, cut=0, flips=[], compressed=True)  # a header asking for 2^56 bytes
@example(dims=[3, 28, 28], n_body=3 * 28 * 28, cut=-1, flips=[], compressed=False)  # one byte short
def test_idx_reader_on_mutated_headers_and_truncations(scratch, dims, n_body, cut, flips, compressed):
    magic = IMAGES_MAGIC if len(dims) == 3 else LABELS_MAGIC if len(dims) == 1 else 0x00000802
    raw = bytearray(idx_bytes(magic, tuple(dims), bytes(range(256)) * (n_body // 256 + 1)))
    raw = raw[:4 + 4 * len(dims) + n_body]
    for i in flips:
        if i < len(raw):
            raw[i] ^= 0xFF
    raw = bytes(raw[:len(raw) + cut] if cut < 0 else raw + b"\x00" * cut)
    check_idx(scratch / "mutated-idx", raw, magic, compressed)


@FAST
@given(keep=st.floats(0.0, 1.0))
def test_idx_reader_on_truncated_gzip(scratch, keep):
    images = np.arange(5 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(5, 28, 28)
    packed = gzip.compress(idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes()))
    path = scratch / "cut.gz"
    path.write_bytes(packed[:int(keep * len(packed))])
    try:
        arr = read_idx(path, IMAGES_MAGIC)
    except DataError as exc:
        assert "\n" not in str(exc)
    else:
        np.testing.assert_array_equal(arr, images)


# -- pictures ----------------------------------------------------------------------------

MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "PA", "La", "RGBa", "I", "I;16", "F", "CMYK", "YCbCr", "HSV", "LAB"]


def picture(mode: str, width: int, height: int, content: str, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if content == "blank":
        gray = np.full((height, width), rng.integers(0, 256), np.uint8)
    elif content == "noise":
        gray = rng.integers(0, 256, (height, width)).astype(np.uint8)
    else:  # a bar of ink somewhere, either polarity
        gray = np.zeros((height, width), np.uint8)
        r0, c0 = rng.integers(0, height), rng.integers(0, width)
        gray[r0:r0 + rng.integers(1, height + 1), c0:c0 + rng.integers(1, width + 1)] = 255
        if rng.random() < 0.5:
            gray = 255 - gray
    if mode == "F":  # a float TIFF may hold anything, NaN and infinities included
        values = gray.astype(np.float32) * np.float32(rng.choice([1.0, 1e-30, 1e30]))
        values.flat[rng.integers(0, values.size, rng.integers(0, 3))] = rng.choice([np.nan, np.inf, -np.inf])
        return Image.fromarray(values)
    if mode == "I":
        return Image.fromarray(gray.astype(np.int32) * int(rng.choice([1, -1, 2**23])))
    if mode == "I;16":
        return Image.fromarray(gray.astype(np.uint16) * 257)
    rgb = Image.fromarray(np.stack([gray, np.roll(gray, 1, axis=1), 255 - gray], axis=-1), "RGB")
    if mode in ("RGBA", "LA", "PA"):
        base = rgb.convert("RGBA")
        base.putalpha(Image.fromarray(rng.integers(0, 256, (height, width)).astype(np.uint8)))
        return base.convert(mode) if mode != "PA" else base.convert("P").convert("PA")
    if mode in ("HSV", "RGBa"):
        return rgb.convert(mode)
    if mode == "La":
        return Image.fromarray(np.stack([gray, 255 - gray], axis=-1), "LA").convert("La")
    if mode == "LAB":  # what a CIELab TIFF opens as
        return Image.merge("LAB", [Image.fromarray(gray), Image.fromarray(255 - gray), Image.fromarray(gray // 2)])
    return Image.fromarray(gray, "L").convert(mode) if mode in ("1", "L", "P") else rgb.convert(mode)


sides = st.integers(1, 64) | st.sampled_from([1, 2, 3, 1500])


@SLOWER
@given(mode=st.sampled_from(MODES), width=sides, height=sides,
       content=st.sampled_from(["blank", "noise", "bar"]), seed=st.integers(0, 2**32 - 1),
       orientation=st.integers(0, 10))
@example(mode="L", width=1, height=1, content="bar", seed=0, orientation=1)
@example(mode="RGB", width=1500, height=1, content="bar", seed=1, orientation=1)
@example(mode="L", width=1, height=1500, content="bar", seed=2, orientation=6)
@example(mode="F", width=30, height=30, content="bar", seed=3, orientation=1)
@example(mode="LAB", width=30, height=30, content="bar", seed=4, orientation=1)
@example(mode="La", width=30, height=30, content="bar", seed=5, orientation=1)
def test_preprocess_image_frames_or_refuses_any_picture(mode, width, height, content, seed, orientation):
    img = picture(mode, width, height, content, seed)
    img.getexif()[0x0112] = orientation
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy's would be extra lines on a user's stderr
            framed = preprocess_image(img)
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    assert framed.shape == (28, 28) and framed.dtype == np.float32
    assert np.isfinite(framed).all() and framed.min() >= 0 and framed.max() <= 1


def image_file(fmt: str) -> bytes:
    """A small picture of a bar, saved in `fmt`."""
    gray = np.zeros((24, 20), np.uint8)
    gray[4:20, 8:12] = 255
    buf = io.BytesIO()
    Image.fromarray(gray).convert("RGB" if fmt == "JPEG" else "L").save(buf, format=fmt)
    return buf.getvalue()


def writable_formats() -> list[str]:
    ok = []
    for fmt in ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]:
        try:
            image_file(fmt)
            ok.append(fmt)
        except (KeyError, OSError):
            pass
    return ok


@SLOWER
@given(fmt=st.sampled_from(writable_formats()), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.integers(0, 10**5), st.integers(1, 255)), max_size=4))
@example(fmt="TIFF", cut=1.0, flips=[(10908, 1)])  # Pillow: TypeError ('IFDRational' ... integer)
def test_load_image_on_damaged_image_files(scratch, fmt, cut, flips):
    data = bytearray(image_file(fmt))
    for where, mask in flips:
        data[where % len(data)] ^= mask
    path = scratch / f"damaged.{fmt.lower()}"
    path.write_bytes(bytes(data[:max(1, int(cut * len(data)))] if cut < 1 else data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own warnings about odd files are not the question
        try:
            framed = load_image(path)
        except DataError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            return
    assert framed.shape == (28, 28) and np.isfinite(framed).all()


# -- the command line --------------------------------------------------------------------

FLAGS = ["--preset", "--data", "--train-samples", "--test-samples", "--backend", "--device", "--dtype", "--seed",
         "--epochs", "--batch-size", "--lr", "--layers", "--activation", "--loss", "--optimizer", "--init",
         "--patience", "--out", "--resume", "--no-progress", "--json", "--steps", "-h", "--bogus"]
VALUES = st.sampled_from(["", "0", "-1", "1", "3", "1e999", "nan", "inf", "-inf", "auto", "numpy", "torch", "cupy",
                          "array_api_strict", "cpu", "cuda", "cuda:7", "float32", "float16", "course", "adam",
                          "relu", "8,4", "8,,4", ",", "-", "--", "letters", "idx:", "npz:", "folder:nope",
                          "é", "x" * 300]) | st.text(max_size=12)


@st.composite
def argvs(draw):
    command = draw(st.sampled_from(["train", "evaluate", "predict", "nosuch", ""]))
    argv = [command] if command else []
    if command in ("evaluate", "predict"):
        argv.append(draw(st.sampled_from(["missing-run", "missing.safetensors", ".", ""])))
    for _ in range(draw(st.integers(0, 6))):
        argv.append(draw(st.sampled_from(FLAGS)))
        if draw(st.booleans()):
            argv.append(draw(VALUES))
    if command == "train":  # whatever else was asked, the data cannot be read: nothing trains
        argv += ["--data", "npz:/nonexistent/xpnet-fuzz.npz"]
    if command == "evaluate":
        argv += ["--data", "npz:/nonexistent/xpnet-fuzz.npz"]
    return argv


@SLOWER
@given(argv=argvs())
@example(argv=["train", "--resume", "nope", "--data", "npz:/nonexistent/xpnet-fuzz.npz"])
@example(argv=["train", "--lr", "1e999", "--data", "npz:/nonexistent/xpnet-fuzz.npz"])
@example(argv=["evaluate", "missing-run", "two\nlines", "--data", "npz:/nonexistent/xpnet-fuzz.npz"])
@example(argv=["train", "--data", "npz:/nonexistent/new\nline.npz"])
def test_cli_answers_any_arguments_with_one_line(scratch, argv):
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(scratch)  # a stray --out must not land in the repository
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        os.chdir(cwd)
    if code == 0:  # only --help succeeds: nothing can be trained, evaluated or predicted here
        assert "-h" in argv, (argv, out.getvalue(), err.getvalue())
        return
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, (argv, err.getvalue())
    assert lines[0].startswith("xpnet") and ": error: " in lines[0], (argv, lines[0])
    usage = lines[0].endswith("--help)")  # argparse's line; an XpnetError's line is "xpnet: error: ..."
    assert code == (2 if usage else 1) and (usage or lines[0].startswith("xpnet: error: ")), (argv, code, lines)
    assert not [p for p in scratch.iterdir() if p.is_dir()], "a refused command created a folder"
