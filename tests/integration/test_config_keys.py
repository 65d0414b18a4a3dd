"""Config keys docs/CONFIG.md documents that no other test exercised, each through its effect on
the running proxy: secrets from files (conninfo_file, jwt.secret_file, admin_token_file),
jwt.leeway, service_role, metrics.enabled, log.access_log, server.max_connections and
database.pool.connect_timeout."""
import signal
import socket
import threading
import time
from pathlib import Path

import jwt as pyjwt
import pytest
import yaml

from test_api import ADMIN, SECRET, call, start_proxy, stop_proxy, token
from zg import Proxy, RawConn, http, request_bytes, wait_for


@pytest.fixture(scope="module")
def fixture_data(cluster):
    cluster.psql(Path(__file__).with_name("api_fixture.sql").read_text())


def test_secrets_from_files(cluster, fixture_data, tmp_path):
    (tmp_path / "conninfo").write_text(cluster.conninfo + "\n")
    (tmp_path / "jwt").write_text(SECRET + "\n")  # one trailing newline is not part of it
    (tmp_path / "admin").write_text(ADMIN)
    cfg = {
        "profile": "dev",
        "server": {"host": "127.0.0.1", "port": 0, "workers": 1},
        "database": {"conninfo_file": str(tmp_path / "conninfo")},
        "auth": {"jwt": {"secret_file": str(tmp_path / "jwt")},
                 "admin_token_file": str(tmp_path / "admin")},
        "rpc": {"schema": "api", "functions": ["add"]},
    }
    p = Proxy(yaml.safe_dump(cfg), name="secret-files")
    try:
        p.wait_for_log(lambda l: l.get("msg") == "/rpc catalog loaded", timeout=20)
        assert call(p.port, "GET", "/v1/me/context", token("alice"))[0] == 200  # conninfo + secret
        assert call(p.admin_port, "GET", "/admin/cache/stats", ADMIN)[0] == 200
        assert call(p.admin_port, "GET", "/admin/cache/stats", ADMIN + "x")[0] == 401
    finally:
        stop_proxy(p)


def expired_token(seconds_ago):
    now = int(time.time())
    return pyjwt.encode({"sub": "alice", "iat": now - 3600, "exp": now - seconds_ago}, SECRET,
                        algorithm="HS256")


def test_leeway_admits_a_recently_expired_token_and_no_more(cluster, fixture_data):
    p = start_proxy(cluster, "leeway", auth={"jwt": {"secret": SECRET, "leeway": "120s"}})
    try:
        assert call(p.port, "GET", "/v1/me/context", expired_token(30))[0] == 200
        assert call(p.port, "GET", "/v1/me/context", expired_token(600))[0] == 401
    finally:
        stop_proxy(p)
    p = start_proxy(cluster, "no-leeway", auth={"jwt": {"secret": SECRET, "leeway": "0ms"}})
    try:
        assert call(p.port, "GET", "/v1/me/context", expired_token(30))[0] == 401
    finally:
        stop_proxy(p)


def test_service_role_names_the_role_that_reads_any_context(cluster, fixture_data):
    p = start_proxy(cluster, "service-role", auth={"service_role": "backoffice"})
    try:
        assert call(p.port, "GET", "/v1/users/bob/context", token("x", role="backoffice"))[0] == 200
        assert call(p.port, "GET", "/v1/users/bob/context", token("x", role="service"))[0] == 403
    finally:
        stop_proxy(p)


def test_metrics_disabled_answers_404(cluster, fixture_data):
    p = start_proxy(cluster, "no-metrics", metrics={"enabled": False})
    try:
        assert call(p.port, "GET", "/v1/me/context", token("alice"))[0] == 200
        status, _, _ = http(p.admin_port, "GET", "/metrics", {"Authorization": "Bearer " + ADMIN})
        assert status == 404
    finally:
        stop_proxy(p)


def test_access_log_off_writes_no_access_lines(cluster, fixture_data):
    p = start_proxy(cluster, "no-access-log", log={"level": "info", "access_log": False})
    try:
        assert http(p.port, "GET", "/healthz", {"X-Request-Id": "quiet-1"})[0] == 200
        # Another line after the request: the log is written in order, so once it is there an
        # access line for the request would be too.
        p.proc.send_signal(signal.SIGHUP)
        p.wait_for_log(lambda l: l.get("msg") == "config reloaded", timeout=10)
        assert not [l for l in p.lines if l.get("msg") == "access"]
    finally:
        stop_proxy(p)


def test_max_connections_closes_connections_past_the_cap(cluster, fixture_data):
    p = start_proxy(cluster, "max-conn", server={"workers": 1, "max_connections": 2})
    try:
        held = [RawConn(p.port), RawConn(p.port)]
        for c in held:
            c.send(request_bytes("GET", "/healthz"))
            assert c.read_response()[0] == 200
        extra = RawConn(p.port)
        try:
            extra.send(request_bytes("GET", "/healthz"))
        except OSError:
            pass
        assert extra.at_eof(), "a third connection was served"
        for c in held:
            c.close()
        def served():
            try:
                return http(p.port, "GET", "/healthz")[0] == 200
            except OSError:  # closed at accept: the held connections' slots are not free yet
                return False
        wait_for(served, what="a free slot")
    finally:
        stop_proxy(p)


def test_connect_timeout_gives_up_on_a_server_that_never_answers(tmp_path):
    """database.pool.connect_timeout: a server that accepts the TCP connection and then says
    nothing (a hung Postgres, a black-holed proxy) is given up on, logged, and not ready."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    port = mute.getsockname()[1]
    held = []
    stop = threading.Event()
    def accept():
        mute.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(mute.accept()[0])  # kept open, never answered
            except OSError:
                pass
    th = threading.Thread(target=accept, daemon=True)
    th.start()
    cfg = {"profile": "dev", "server": {"host": "127.0.0.1", "port": 0, "workers": 1},
           "database": {"conninfo": "host=127.0.0.1 port=%d dbname=x user=x" % port,
                        "pool": {"min": 1, "connect_timeout": "300ms", "reconnect_max": "1s"}},
           "auth": {"jwt": {"secret": SECRET}}}
    p = Proxy(yaml.safe_dump(cfg), name="connect-timeout")
    try:
        line = p.wait_for_log(lambda l: "pool.connect_timeout" in l.get("error", ""), timeout=20)
        assert line["level"] in ("warn", "error")
        assert http(p.port, "GET", "/readyz")[0] == 503
        assert held, "the proxy never connected to the mute server"
    finally:
        stop_proxy(p)
        stop.set()
        th.join(5)
        for s in held:
            s.close()
        mute.close()
