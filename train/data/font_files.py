"""Where font files are found: matplotlib's (always installed), the system's (fontconfig or the
usual folders, only when asked) and a folder the user names. Only files are listed here, not
opened: the list is cheap, so it can key the letters' cache (train/data/fonts.py checks them).
"""

import os
import shutil
import subprocess
from pathlib import Path

import matplotlib

from xpnet.train.data.dataset import DataError

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts",
                    "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts")


def candidate_font_files(fonts_dir: str | Path | None = None, system: bool = False) -> list[str]:
    """The font files beyond the packages' (matplotlib's, and the system's when asked), unchecked:
    cheap, so they can key a cache."""
    paths = matplotlib_font_files() + (system_font_files() if system else [])
    if fonts_dir is not None:
        paths += font_files_in(fonts_dir)
    return list(dict.fromkeys(paths))


def font_files_in(fonts_dir) -> list[str]:
    """The font files in the user's fonts folder, or a DataError saying why there are none."""
    folder = Path(fonts_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DataError(f"fonts folder {folder} is a file; give the folder that holds the fonts")
    if not folder.is_dir():
        raise DataError(f"fonts folder {folder} does not exist; give a folder of .ttf/.otf files "
                        "(letters:system adds this machine's own fonts)")
    files = _font_files_under(folder)
    if not files:
        raise DataError(f"fonts folder {folder} holds no {'/'.join(FONT_SUFFIXES)} files; give a folder of fonts")
    return files


def matplotlib_font_files() -> list[str]:
    """The TrueType fonts bundled with matplotlib, present wherever xpnet is installed."""
    return _font_files_under(Path(matplotlib.get_data_path()) / "fonts" / "ttf")


def system_font_files() -> list[str]:
    """The system's font files, from fontconfig when available, else the usual folders."""
    files = _fc_list_files()
    if not files:
        for folder in SYSTEM_FONT_DIRS:
            files += _font_files_under(Path(folder).expanduser())
    return sorted(set(files))


def _fc_list_files() -> list[str]:
    """Font files fontconfig knows about; empty when fc-list is missing or fails."""
    if shutil.which("fc-list") is None:
        return []
    try:
        out = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    files = (line.strip().rstrip(":").strip() for line in out.stdout.splitlines())
    return [f for f in files if f.lower().endswith(FONT_SUFFIXES) and os.path.isfile(f)]


def _font_files_under(folder: Path) -> list[str]:
    """Font files anywhere below a folder, sorted so the result is the same on every run."""
    if not folder.is_dir():
        return []
    return sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file())
