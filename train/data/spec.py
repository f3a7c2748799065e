"""The data spec string (`letters`, `idx:DIR`, `npz:FILE`, ...) and the one entry point, `load_data`.

A spec is `scheme` or `scheme:argument`, split at the first colon so paths may hold colons.
A bare path is read by what it is (BARE): `data.npz` as `npz:data.npz`, `data.csv` as
`csv:data.csv`, a folder as `folder:DIR`.
File sources are capped at n_train / n_test samples by a seeded random subset (so a small
quick run still sees every class); the synthetic letters are generated at exactly that size.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np

from xpnet.train.data.dataset import DataError, DataSet

# The default synthetic set, EMNIST letters' scale (124,800 + 20,800). Twice the 60,000 it once
# was reads 2 points more of every held-out group in about 30 s more (docs/letters.md).
LETTERS_TRAIN, LETTERS_TEST = 120_000, 10_000
# The most letters one run generates (train + test): 7.8 GB as cached bytes, 31 GB as the float32
# rows training reads, and hours of rendering; beyond it a count is a typo, refused before any work.
MAX_LETTERS = 10_000_000
SCHEMES = {  # scheme -> how to write it, for the error message that lists them
    "letters": "letters[:system or :FONTS_DIR]",
    "idx": "idx:DIR",
    "fashion-mnist": "fashion-mnist:DIR",
    "emnist-letters": "emnist-letters:DIR",
    "folder": "folder:DIR",
    "npz": "npz:FILE",
    "csv": "csv:FILE[#COLUMN]",
}
BARE = {".npz": "npz", ".csv": "csv"}  # a bare path's extension -> its scheme (a folder: folder)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a spec into (scheme, argument), checking the scheme exists and has its argument."""
    scheme, sep, arg = str(spec).strip().partition(":")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        bare = _bare_scheme(str(spec).strip())
        if bare is None:
            raise DataError(f"unknown data spec {spec!r}; use one of: {', '.join(SCHEMES.values())}, "
                            f"or a path ending in {' or '.join(BARE)}, or a folder")
        scheme, arg = bare, str(spec).strip()
    if scheme == "letters":  # letters:system adds the machine's fonts, letters:DIR a folder of them
        arg = arg.strip()
        return scheme, ("system" if arg.lower() == "system" else arg) or None
    if not arg.strip():
        raise DataError(f"data spec {spec!r} needs a path; write it as {SCHEMES[scheme]}")
    return scheme, arg.strip()


def _bare_scheme(spec: str) -> str | None:
    """The scheme a bare path stands for: by its extension (before any `#COLUMN`), or a folder."""
    path = Path(spec.rpartition("#")[0] if "#" in spec else spec).expanduser()
    if path.suffix.lower() in BARE:
        return BARE[path.suffix.lower()]
    return "folder" if spec and path.is_dir() else None


def absolute_spec(spec: str) -> str:
    """The spec with its path made absolute and its scheme written out, so a run's recorded
    data loads from any folder."""
    scheme, arg = parse_spec(spec)
    if arg is None or (scheme == "letters" and arg == "system"):
        return str(spec).strip()
    return f"{scheme}:{Path(arg).expanduser().absolute()}"


def load_data(spec: str = "letters", *, seed: int = 0, cache_dir: str | Path | None = None,
              fonts_dir: str | None = None, n_train: int | None = None, n_test: int | None = None,
              progress: bool = True, small_letters: float | None = None) -> DataSet:
    """Load the data set a spec names, as float32 rows ready for training.

    `seed` makes the synthetic letters and any subsetting reproducible; `cache_dir` and
    `fonts_dir` only matter for `letters` (`letters:DIR` names a fonts folder too). n_train / n_test are the sizes to generate
    (letters; default 120,000 + 10,000, EMNIST's scale) or the most samples to keep (file
    sources; default: all of them). `small_letters` is the share of the letters' training
    pictures drawn 7-13 pixels tall and scaled up (default: the generator's 0.25); the held-out
    groups are the same whatever it is.
    """
    scheme, arg = parse_spec(spec)
    check_small_letters(small_letters, scheme)
    if scheme == "letters":
        n_train = LETTERS_TRAIN if n_train is None else n_train
        n_test = LETTERS_TEST if n_test is None else n_test
    _check_sizes(n_train if n_train is not None else 1, n_test if n_test is not None else 0, seed)
    check_sample_counts(spec, n_train, n_test)
    if scheme == "letters":
        from xpnet.train.data.letters import load_letters
        if fonts_dir is not None and arg not in (None, "system"):
            raise DataError(f"data spec {spec!r} names a fonts folder and fonts_dir names another; give one")
        folder = fonts_dir if arg in (None, "system") else arg
        from xpnet.train.data.letters_render import Augment
        augment = Augment() if small_letters is None else replace(Augment(), lowres_prob=float(small_letters))
        return load_letters(seed=seed, cache_dir=cache_dir, fonts_dir=folder, system_fonts=arg == "system",
                            n_train=n_train, n_test=n_test, progress=progress, augment=augment)
    ds = _load_file_source(scheme, arg, progress)
    if n_train is None and n_test is None:
        return ds
    n_test_all = 0 if ds.y_test is None else len(ds.y_test)
    return cap_samples(ds, n_train or len(ds.X_train), n_test if n_test is not None else n_test_all, seed)


def check_small_letters(share, scheme: str = "letters") -> None:
    """A share from 0 to 1, for the letters only: other data has no small letters to draw."""
    if share is None:
        return
    if isinstance(share, bool) or not isinstance(share, (int, float, np.integer, np.floating)) \
            or not 0 <= share <= 1:
        raise DataError(f"small letters must be a share from 0 to 1 (e.g. 0.4), got {share!r:.40}")
    if scheme != "letters":
        raise DataError(f"small letters are drawn for the built-in letters only, not {scheme} data: "
                        "leave --small-letters (small_letters=) out")


def _load_file_source(scheme: str, arg: str, progress: bool) -> DataSet:
    """Dispatch a file-backed scheme to its loader (imported lazily: each is only needed alone)."""
    if scheme in ("idx", "fashion-mnist"):
        from xpnet.train.data.idx import load_idx_dir
        return load_idx_dir(arg, fashion=scheme == "fashion-mnist")
    if scheme == "emnist-letters":
        from xpnet.train.data.idx import load_emnist_letters_dir
        return load_emnist_letters_dir(arg)
    if scheme == "folder":
        from xpnet.train.data.folder import load_folder
        return load_folder(arg, progress=progress)
    if scheme == "csv":
        from xpnet.train.data.csv_table import load_csv
        return load_csv(arg)
    from xpnet.train.data.npz import load_npz
    return load_npz(arg)


def _check_sizes(n_train: int, n_test: int, seed: int) -> None:
    """Sizes and seed must be whole numbers (numpy seeds are non-negative); training needs a sample."""
    for name, value, least in (("seed", seed, 0), ("n_train", n_train, 1), ("n_test", n_test, 0)):
        if not _whole_at_least(value, least):
            raise DataError(f"{name} must be a whole number >= {least}, got {value!r}")


def _whole_at_least(value, least: int) -> bool:
    """An int, or a float or numpy number equal to one (2.0 is 2): None, "3" or True are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(value)) and int(value) == value and value >= least


def check_sample_counts(spec: str, n_train: int | None, n_test: int | None) -> None:
    """Letters are generated at exactly the asked size: refuse one past MAX_LETTERS before any
    work (a file source only keeps at most n samples, so any count suits it)."""
    if parse_spec(spec)[0] != "letters":
        return
    from xpnet.train.data.letters_groups import VALIDATION_SHARE  # the letters' modules load only for letters

    n_test = LETTERS_TEST if n_test is None else n_test
    total = (LETTERS_TRAIN if n_train is None else n_train) + n_test + int(n_test * VALIDATION_SHARE)
    if total > MAX_LETTERS:
        raise DataError(f"{total:,} letters asked for (train + test + validation, half the test's size); one run "
                        "generates at most "
                        f"{MAX_LETTERS:,} (31 GB as float32 rows): give a smaller --train-samples / --test-samples")


def cap_samples(ds: DataSet, n_train: int, n_test: int, seed: int) -> DataSet:
    """Keep at most n_train / n_test samples, a seeded random subset in the original order."""
    rng = np.random.default_rng([seed, 0x5EED])
    keep_train = _subset(len(ds.X_train), n_train, rng)
    keep_test = _subset(len(ds.X_test), n_test, rng) if ds.X_test is not None else None
    if keep_train is None and keep_test is None:
        return ds
    info = dict(ds.info, n_train_available=len(ds.X_train),
                n_test_available=None if ds.X_test is None else len(ds.X_test))
    return replace(
        ds,
        X_train=ds.X_train if keep_train is None else ds.X_train[keep_train],
        y_train=ds.y_train if keep_train is None else ds.y_train[keep_train],
        X_test=ds.X_test if keep_test is None else ds.X_test[keep_test],
        y_test=ds.y_test if keep_test is None else ds.y_test[keep_test],
        info=info,
    )


def _subset(n: int, limit: int, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted indices of a random `limit`-subset of range(n), or None when all n fit."""
    if n <= limit:
        return None
    return np.sort(rng.choice(n, size=limit, replace=False))
