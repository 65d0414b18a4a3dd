"""Fixtures: one Postgres cluster per session, and proxies that are always stopped and checked
(clean exit, no sanitizer report) after each test."""
import copy

import pytest
import yaml

from zg import Cluster, Proxy


def base_config(cluster):
    return {
        "profile": "dev",
        "server": {"host": "127.0.0.1", "port": 0, "workers": 2},
        "database": {"conninfo": cluster.conninfo},
        "log": {"level": "debug"},
    }


def merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v
    return dst


@pytest.fixture(scope="session")
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture
def proxy_factory(cluster):
    started = []

    def make(overrides=None, name="proxy", raw=None, **kw):
        cfg = merge(copy.deepcopy(base_config(cluster)), overrides or {})
        text = raw if raw is not None else yaml.safe_dump(cfg, sort_keys=False)
        p = Proxy(text, name=name, **kw)
        started.append(p)
        return p

    yield make
    problems = []
    for p in started:
        rc = p.stop()
        if rc != 0:
            problems.append("%s exited with %s" % (p.name, rc))
        problems += p.sanitizer_reports()
    assert not problems, "\n".join(problems)


@pytest.fixture
def proxy(proxy_factory):
    return proxy_factory()
