"""Shared pass/fail bookkeeping for the interop scripts: one line per check,
then the closing line CI reads, `interop: N passed, M failed`."""
import sys

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def finish():
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
