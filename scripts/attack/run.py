"""Entry point of the reliability attack: `python scripts/attack/run.py MINUTES SEED --site DIR --work DIR`.

Why: issue 17 closes only when a fresh attack of round four's kind finds nothing new in an
hour. This draws trial kinds from `random.Random(SEED)` until MINUTES have passed, runs the
snapshot at SITE (never the working tree), and writes WORK/findings.jsonl (one object per
suspected fault) and WORK/counts.json (rewritten after every trial), with a line per trial.
"""

import argparse
import atexit
import json
import random
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile import hostile  # noqa: E402
from kills import kill_generation, kill_report, kill_train  # noqa: E402
from pairs import pair_on_cache, pair_on_folder  # noqa: E402
from proc import PY, Ctx, cleanup  # noqa: E402
from serve_api import serve_attack  # noqa: E402

KINDS = {"kill-train": (kill_train, 30), "kill-gen": (kill_generation, 9), "kill-report": (kill_report, 18),
         "pair": (pair_on_folder, 16), "pair-cache": (pair_on_cache, 5), "hostile": (hostile, 22),
         "serve": (serve_attack, 5)}


class Counts:
    def __init__(self, path):
        self.path = path
        self.trials, self.signals, self.findings = Counter(), defaultdict(Counter), Counter()
        self.errors, self.skipped = Counter(), Counter()

    def signal(self, kind, what):
        self.signals[kind][what] += 1

    def write(self, extra):
        data = {"trials": self.trials, "signals": self.signals, "findings": self.findings,
                "harness_errors": self.errors,
                "skipped": self.skipped, **extra}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.path)


def check_site(site):
    """`import xpnet` must be SITE's, and a child must get SIGINT as Ctrl-C (`nohup cmd &` ignores it)."""
    # A shell without job control starts `cmd &` with SIGINT ignored, and children inherit that:
    # every Ctrl-C would then be "lost". A handled signal is reset to default at exec, so handle it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    got = subprocess.run([PY, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
                         capture_output=True, text=True).stdout.strip()
    if got != "True":
        sys.exit(f"children would not see SIGINT as Ctrl-C ({got!r}): fix the harness's start")
    out = subprocess.run([PY, "-c", "import xpnet, xpnet.train; print(xpnet.__file__); print(xpnet.train.__file__)"],
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, cwd="/",
                         capture_output=True, text=True)
    files = out.stdout.split()
    if len(files) != 2 or not all(f.startswith(str(site) + "/") for f in files):
        sys.exit(f"import xpnet does not resolve to the site {site}: {out.stdout} {out.stderr}")
    print(f"site ok: {files}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("minutes", type=float)
    ap.add_argument("seed", type=int)
    ap.add_argument("--site", required=True, help="snapshot of the code under attack (scripts/attack/snapshot.sh)")
    ap.add_argument("--work", required=True, help="folder for trials, findings.jsonl and counts.json")
    ap.add_argument("--kinds", help="comma-separated subset of " + ",".join(KINDS))
    a = ap.parse_args()
    site, work = Path(a.site).resolve(), Path(a.work).resolve()
    if work.exists() and any(work.iterdir()):
        sys.exit(f"{work} is not empty: give a new --work folder (trials are numbered from 1, findings appended)")
    check_site(site)
    work.mkdir(parents=True, exist_ok=True)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(a.seed)
    ctx = Ctx(site, work, rng)
    counts = Counts(work / "counts.json")
    kinds = a.kinds.split(",") if a.kinds else list(KINDS)
    findings = open(work / "findings.jsonl", "a")
    start = time.monotonic()
    end = start + a.minutes * 60
    # every kind at least once early, then weighted draws
    order = rng.sample(kinds, len(kinds))
    while time.monotonic() < end:
        kind = order.pop(0) if order else rng.choices(kinds, [KINDS[k][1] for k in kinds])[0]
        t0 = time.monotonic()
        try:
            info, probs = KINDS[kind][0](ctx, counts)
        except Exception:  # a harness bug: never call it xpnet's, but never call it "ok" either
            cleanup()
            counts.errors[kind] += 1
            info, probs = {"harness_error": traceback.format_exc()}, []
            print(traceback.format_exc(), flush=True)
        counts.trials[kind] += 1
        if "skipped" in info:
            counts.skipped[kind] += 1
        n = ctx.n
        if probs:
            counts.findings[kind] += 1
            findings.write(json.dumps({"trial": n, "kind": kind, "seed": a.seed, "site": str(site),
                                       "problems": probs, "info": info}, default=str) + "\n")
            findings.flush()
        counts.write({"seed": a.seed, "site": str(site), "elapsed_s": round(time.monotonic() - start),
                      "trials_total": sum(counts.trials.values())})
        what = info.get("setting") or info.get("case") or info.get("cmd") or info.get("scenario") or ""
        sigs = [s for p in info.get("procs", []) if isinstance(p, dict) for s in p.get("signals", [])]
        print(f"{time.strftime('%H:%M:%S')} #{n} {kind:11s} {str(what)[:28]:28s} {time.monotonic() - t0:6.1f}s "
              f"signals={sigs} {_verdict(info, probs)}", flush=True)
    findings.close()
    cleanup()
    print(f"done: {dict(counts.trials)} findings {dict(counts.findings)} harness errors {dict(counts.errors)} "
          f"skipped {dict(counts.skipped)}", flush=True)


def _verdict(info, probs):
    if probs:
        return "FINDING: " + "; ".join(str(p.get("check")) for p in probs if "check" in p)
    if "harness_error" in info:
        return "HARNESS ERROR"
    return f"SKIPPED ({info['skipped']})" if "skipped" in info else "ok"


if __name__ == "__main__":
    main()
