"""A stand-in for a training script, for testing the launcher without MXNet.

Every process records ``<role>-<pid>.json`` (its DMLC_* variables and whether its parent has
MXNet loaded) in ``--out`` and starts a grandchild (``child-<pid>.json``) that sleeps, so the
tests can check that the launcher ends whole process groups. ``--mode``:
  ok     every process exits 0;
  crash  once the whole job has started, the first worker exits with code 3, the rest block
         (as MXNet does when a peer dies);
  hang   every process blocks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SLEEPER = "import time\nwhile True: time.sleep(1)"


def write_atomically(path: Path, text: str) -> None:
    """Readers polling the directory never see a half-written record."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, path)


def recorded_members(out: Path) -> int:
    return sum(not p.name.startswith("child-") for p in out.glob("*-*.json"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=["ok", "crash", "hang"], required=True)
    parser.add_argument("--members", type=int, required=True, help="processes in the job")
    args = parser.parse_args()
    role = os.environ["DMLC_ROLE"]
    child = subprocess.Popen([sys.executable, "-c", SLEEPER])
    record = {k: v for k, v in os.environ.items() if k.startswith("DMLC_")}
    write_atomically(args.out / f"child-{child.pid}.json", "{}")
    write_atomically(args.out / f"{role}-{os.getpid()}.json", json.dumps(record))
    if args.mode == "ok":
        child.kill()
        child.wait()
        return
    if args.mode == "crash" and role == "worker":
        try:
            os.close(os.open(args.out / "crashed", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass  # another worker crashes: block like its peers
        else:
            while recorded_members(args.out) < args.members:
                time.sleep(0.05)
            os._exit(3)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
