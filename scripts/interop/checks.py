"""The check harness of the interop clients: each decorated function runs at once as one named
check; a failure is recorded and printed with its traceback, not fatal, and `finish` prints the
count and exits 1 if any check failed."""

import sys
import traceback

results = []  # (name, ok)


def check(name):
    """Runs the decorated function now as one named check; a failure is recorded, not fatal."""

    def run(fn):
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported the same way
            results.append((name, False))
            print(f"FAIL  {name}")
            traceback.print_exc(limit=3, file=sys.stdout)
        else:
            results.append((name, True))
            print(f"ok    {name}")
        return fn

    return run


def finish(what):
    """Prints how many of the checks of `what` passed; exits 1 if any failed, else 0."""
    passed = sum(1 for _, ok in results if ok)
    print(f"{what}: {passed} passed, {len(results) - passed} failed")
    sys.exit(1 if passed < len(results) else 0)
