#!/usr/bin/env python3
"""Lists every test of a ctest run that did not run as a test, one line each: NAME: REASON.

    python3 scripts/list-skipped.py build [build-asan ...]

Reads BUILD/Testing/Temporary/LastTest.junit.xml, which the test presets write (ctest's
--output-junit). ctest's text log calls a test that exited 77 "Test Passed"; the JUnit file says
what ctest decided: every test whose status is not "run" (skipped by SKIP_RETURN_CODE or
SKIP_REGULAR_EXPRESSION, not run for a missing program or file, disabled) is listed. The reason
is the one the test printed: a gtest skip's text between "...: Skipped" and "[  SKIPPED ] NAME",
a script's "[  SKIPPED ] REASON" line, a stub's "skipped: REASON" line; else ctest's own.
Exits 1 if a build directory has no such file (its skips could not be listed).
"""
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def reason_of(case):
    output = (case.findtext("system-out") or "").splitlines()
    for line in output:
        if line.startswith("skipped: "):
            return line[len("skipped: "):]
    for index, line in enumerate(output):
        if line.endswith(": Skipped"):
            text = []
            for following in output[index + 1:]:
                if following.startswith("[  SKIPPED ]"):
                    break
                text.append(following.strip())
            if any(text):
                return " ".join(t for t in text if t)
    for line in output:
        if line.startswith("[  SKIPPED ] "):
            return line[len("[  SKIPPED ] "):]
    skipped = case.find("skipped")
    if skipped is not None and skipped.get("message"):
        return "ctest: " + skipped.get("message")
    return "ctest: " + case.get("status", "?") + (" (" + " ".join(output) + ")" if output else "")


def main(build_dirs):
    missing = 0
    for build in build_dirs:
        junit = Path(build) / "Testing/Temporary/LastTest.junit.xml"
        if not junit.is_file():
            print(f"list-skipped: no test results at {junit} (run that build's tests first)", file=sys.stderr)
            missing += 1
            continue
        cases = ElementTree.parse(junit).getroot().iter("testcase")
        # "run" passed or "fail"ed; "notrun" was skipped or could not start; "disabled".
        # A gtest parameter's name follows "  # GetParam() = …": the name alone is enough.
        listed = [
            (case.get("name").split("  #")[0], reason_of(case))
            for case in cases
            if case.get("status") in ("notrun", "disabled")
        ]
        for name, reason in listed:
            print(f"  {build}: {name}: {reason}")
        print(f"list-skipped: {build}: {len(listed)} test(s) skipped or not run")
    return 1 if missing else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
