"""The helper both collection-stage benchmark scripts run commands through.

The peak RSS of a process forked from a large Python process would start at
that process's (Linux carries the high-water mark across fork and exec), so a
small helper interpreter forks, execs the command and reports the child's
peak on stderr as `MAXRSS_KIB <n>`. Use:
    subprocess.run([sys.executable, "-c", PEAK_RSS_HELPER, *cmd], ...)
"""

PEAK_RSS_HELPER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[1], sys.argv[1:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "sys.stderr.write(f'\\nMAXRSS_KIB {usage.ru_maxrss}\\n')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def measured(cmd, cwd, ok=(0,)):
    """Runs `cmd` in `cwd` through the helper: (seconds, peak RSS in MiB,
    stdout). An exit status outside `ok` stops the benchmark with stderr."""
    import subprocess
    import sys
    import time

    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", PEAK_RSS_HELPER, *cmd], cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode not in ok:
        raise SystemExit(r.stderr)
    return elapsed, int(r.stderr.rsplit("MAXRSS_KIB", 1)[1]) / 1024, r.stdout
