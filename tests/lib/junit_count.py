#!/usr/bin/python3
"""Prints "<passed> <failed> <skipped>" for one or more JUnit XML files (ctest, pytest); with
--skipped, the names of the skipped tests instead, one a line."""
import sys
import xml.etree.ElementTree as ET

names_only = sys.argv[1:2] == ["--skipped"]
paths = sys.argv[2:] if names_only else sys.argv[1:]
passed = failed = skipped = 0
skipped_names = []
for path in paths:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        failed += 1  # a runner that wrote no report counts as one failure
        continue
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        status = case.get("status", "")
        if "failure" in tags or "error" in tags or status == "fail":
            failed += 1
        elif "skipped" in tags or status in ("notrun", "disabled"):
            skipped += 1
            skipped_names.append(case.get("name", "?"))
        else:
            passed += 1
if names_only:
    print("\n".join(skipped_names))
else:
    print(passed, failed, skipped)
