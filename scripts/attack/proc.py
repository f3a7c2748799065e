"""Running the xpnet under attack as child processes, and reading what they leave.

Why: every trial starts `python -m xpnet` from the snapshot (`PYTHONPATH=SITE`), maybe signals
it at a chosen moment (a random time, or as a temp file appears), and must tell a hang from a
slow shared machine. One place owns the environment, the generous hang limit, the stack
record of a hung process, the cleanup of its process group, and the stderr judgements
(traceback, one line) that every trial kind shares.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable  # the interpreter that runs the harness runs the code under attack
HANG_S = 120.0          # a tiny run past this is a hang, not a slow machine
TEMP_SUFFIX = ".xpnet.tmp"
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
LIVE = set()            # Procs not yet reaped, killed on exit
# ATTACK_SELFTEST=exit0-is-fault deliberately breaks the checks (exit 0 counts as a fault), to see them flag
SELFTEST_EXIT0 = os.environ.get("ATTACK_SELFTEST") == "exit0-is-fault"


class Ctx:
    """What every trial needs: the site, the work folder, a shared letters cache, a seeded Random."""

    def __init__(self, site, work, rng):
        self.site, self.work, self.rng = Path(site), Path(work), rng
        self.shared_cache = self.work / "cache-shared"
        self.shared_cache.mkdir(parents=True, exist_ok=True)
        self.refs = {}
        self.ref_secs = {}
        self.n = 0

    def trial_dir(self, kind):
        self.n += 1
        d = self.work / "trials" / f"{self.n:05d}-{kind}"
        d.mkdir(parents=True)
        return d

    def env(self, cache=None):
        e = dict(os.environ, PYTHONPATH=str(self.site), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                 MKL_NUM_THREADS="1", XPNET_BACKEND="numpy", XPNET_CACHE=str(cache or self.shared_cache),
                 PYTHONDONTWRITEBYTECODE="1")
        e.pop("PYTHONSTARTUP", None)
        return e


class Proc:
    """One `python -m xpnet ARGS` in its own session (so its pool workers share its process group)."""

    def __init__(self, ctx, args, cwd, cache=None, tag="p"):
        self.args = [str(a) for a in args]
        self.cmd = [PY, "-m", "xpnet", *self.args]
        self.cwd = Path(cwd)
        self.out_path = self.cwd / f".{tag}.{ctx.n}.{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        self.site = str(ctx.site)
        self.env_note = f"PYTHONPATH={ctx.site} XPNET_CACHE={cache or ctx.shared_cache}"
        with open(self.out_path, "wb") as o, open(self.err_path, "wb") as e:
            self.p = subprocess.Popen(self.cmd, cwd=self.cwd, stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                      env=ctx.env(cache), start_new_session=True)
        self.pid = self.p.pid
        self.t0 = time.monotonic()
        self.t_end = None
        self.signals = []   # (name, seconds after start)
        self.hang = None
        LIVE.add(self)

    def poll(self):
        rc = self.p.poll()
        if rc is not None and self.t_end is None:
            self.t_end = time.monotonic()
            LIVE.discard(self)
        return rc

    def send(self, name):
        if self.poll() is not None:
            return False
        try:
            os.kill(self.pid, SIGNALS[name])
        except ProcessLookupError:
            return False
        self.signals.append((name, round(time.monotonic() - self.t0, 3)))
        return True

    def wait(self, limit=HANG_S):
        since = time.monotonic()  # the limit counts from this call: a server may have run for minutes
        while self.poll() is None:
            if time.monotonic() - since > limit:
                self.hang = stack_record(self.pid)
                kill_group(self.pid)
                self.p.wait()
                self.poll()
                break
            time.sleep(0.02)
        return self.p.returncode

    @property
    def rc(self):
        return self.p.returncode

    @property
    def stderr(self):
        return self.err_path.read_bytes().decode("utf-8", "replace") if self.err_path.exists() else ""

    @property
    def stdout(self):
        return self.out_path.read_bytes().decode("utf-8", "replace") if self.out_path.exists() else ""

    def record(self):
        """The facts a finding needs about this process."""
        end = self.t_end or time.monotonic()
        return {"cmd": " ".join(self.cmd), "cwd": str(self.cwd), "env": self.env_note, "pid": self.pid,
                "rc": self.rc, "signals": self.signals, "seconds": round(end - self.t0, 3),
                "last_signal_to_exit_s": round(end - self.t0 - self.signals[-1][1], 3) if self.signals else None,
                "hang_stack": self.hang, "stderr_tail": self.stderr[-2500:], "stdout_tail": self.stdout[-800:]}


def run(ctx, args, cwd, cache=None, limit=HANG_S, tag="p"):
    p = Proc(ctx, args, cwd, cache, tag)
    p.wait(limit)
    return p


def group_pids(pgid):
    """Live processes of process group `pgid` (pool workers outlive a parent killed by SIGKILL)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(d.name))
    return pids


def stack_record(pid):
    """What a hung process is doing: its kernel stack, wait channel and state, and its group's."""
    rec = {}
    for q in [pid, *[x for x in group_pids(pid) if x != pid]]:
        r = {}
        for f in ("stack", "wchan", "status"):
            try:
                t = Path(f"/proc/{q}/{f}").read_text()
                r[f] = t if f != "status" else "".join(l for l in t.splitlines(True) if l.split(":")[0] in
                                                        ("State", "Threads", "PPid"))
            except OSError as e:
                r[f] = f"unreadable: {e}"
        try:
            r["threads"] = {t.name: Path(f"/proc/{q}/task/{t.name}/wchan").read_text()
                            for t in Path(f"/proc/{q}/task").iterdir()}
        except OSError:
            pass
        rec[q] = r
    return rec


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup():
    for p in list(LIVE):
        kill_group(p.pid)
        try:
            p.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        LIVE.discard(p)


def listing(*folders):
    out = {}
    for f in folders:
        f = Path(f)
        try:
            out[str(f)] = sorted(f"{x.name} {x.lstat().st_size}" + (" ->" if x.is_symlink() else "")
                                 for x in f.iterdir())
        except OSError as e:
            out[str(f)] = f"unreadable: {e}"
    return out


def temps(folder):
    try:
        return sorted(x.name for x in Path(folder).iterdir() if x.name.endswith(TEMP_SUFFIX))
    except OSError:
        return []


def err_lines(text):
    return [l for l in text.splitlines() if l.strip()]


def has_traceback(text):
    return "Traceback (most recent call last)" in text or "Fatal Python error" in text \
        or "Exception ignored" in text


def one_line_error(text):
    """stderr holds only xpnet's own lines (its warnings, then the error), and no traceback."""
    lines = err_lines(text)
    return bool(lines) and all(l.startswith(("xpnet", "usage:")) for l in lines) and not has_traceback(text)


def refused(p):
    """A refusal as RELIABILITY.md promises: exit 1 or 2, and xpnet's lines only (never a crash by a signal)."""
    return p.rc in (1, 2) and one_line_error(p.stderr)


def watch_for(proc, folders, patterns, deadline):
    """Poll `folders` quickly until a temp file whose name contains a pattern appears; its name, or None."""
    while proc.poll() is None and time.monotonic() < deadline:
        for f in folders:
            for name in temps(f):
                if any(p in name for p in patterns):
                    return name
        time.sleep(0.002)
    return None
