"""The proxy's Postgres pool (tests/integration/pool_test.cpp, GoogleTest) against the real
cluster: one pytest case per GoogleTest case, from the build next to the proxy under test (so the
sanitizer run checks the sanitized pool)."""
import os
import subprocess

import pytest

from zg import PROXY_BIN, SANITIZER_MARKERS

POOL_TESTS = PROXY_BIN.parent.parent / "tests" / "unit" / "zonegate_pool_tests"


def gtest_cases():
    out = subprocess.run([str(POOL_TESTS), "--gtest_list_tests"], capture_output=True, text=True,
                         check=True)
    cases, suite = [], None
    for line in out.stdout.splitlines():
        if not line.startswith(" "):
            suite = line.strip()
        else:
            cases.append(suite + line.split("#")[0].strip())
    assert cases, "no GoogleTest cases in %s" % POOL_TESTS
    return cases


@pytest.mark.parametrize("case", gtest_cases())
def test_pool(cluster, case):
    env = dict(os.environ)
    env["ZONEGATE_TEST_CONNINFO"] = cluster.conninfo
    out = subprocess.run([str(POOL_TESTS), "--gtest_filter=" + case], capture_output=True,
                         text=True, env=env, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "[  PASSED  ] 1 test" in text, text
    assert not any(m in text for m in SANITIZER_MARKERS), text
