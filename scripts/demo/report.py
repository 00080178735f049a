"""How the ops tests end: one FAIL line per problem, the closing
'N passed, N failed' line ctest logs show, and the exit status."""
import sys


def finish(failures, passed=None):
    for f in failures:
        print("FAIL " + f)
    if passed is None:  # one check as a whole
        passed = 0 if failures else 1
    print("%d passed, %d failed" % (passed, len(failures)), flush=True)
    sys.exit(1 if failures else 0)
