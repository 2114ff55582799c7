"""Runs a command and polls its peak memory from /proc, for the benchmarks
that compare a reference held in memory with one sorted on disk."""

import subprocess
import tempfile
import time


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(cmd, cwd):
    """Seconds, peak anonymous and file-backed resident MiB, and stdout."""
    out = tempfile.TemporaryFile()
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.PIPE)
    anon = file = 0
    while p.poll() is None:
        anon = max(anon, status_kib(p.pid, "RssAnon"))
        file = max(file, status_kib(p.pid, "RssFile"))
        time.sleep(0.002)
    elapsed = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(p.stderr.read().decode())
    out.seek(0)
    return elapsed, anon / 1024, file / 1024, out.read()
