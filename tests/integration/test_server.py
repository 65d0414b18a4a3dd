"""The HTTP server over real sockets: health, request ids, keep-alive, pipelining, limits,
timeouts, malformed input and graceful shutdown."""
import datetime
import json
import os
import signal
import subprocess
import time

import yaml

from zg import PROXY_BIN, RawConn, get_json, http, request_bytes, run_cli, wait_for


def test_healthz_answers_200_with_json_and_security_headers(proxy):
    status, headers, body = get_json(proxy.port, "/healthz")
    assert status == 200
    assert body == {"status": "ok"}
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["x-request-id"]
    assert "date" in headers


def test_request_id_is_echoed_when_valid_and_replaced_when_not(proxy):
    _, h, _ = http(proxy.port, "GET", "/healthz", {"X-Request-Id": "abc-123.x_y"})
    assert h["x-request-id"] == "abc-123.x_y"
    _, h, _ = http(proxy.port, "GET", "/healthz", {"X-Request-Id": "bad id with spaces"})
    assert h["x-request-id"] != "bad id with spaces" and h["x-request-id"]
    _, h2, _ = http(proxy.port, "GET", "/healthz")
    assert h2["x-request-id"] != h["x-request-id"]


def test_access_log_line_carries_the_request_id(proxy):
    _, h, _ = http(proxy.port, "GET", "/healthz", {"X-Request-Id": "trace-77"})
    line = proxy.wait_for_log(lambda l: l.get("msg") == "access" and l.get("request_id") == "trace-77")
    assert line["status"] == 200 and line["route"] == "healthz" and line["path"] == "/healthz"
    assert line["level"] == "info" and line["method"] == "GET" and line["client"] == "127.0.0.1"
    # A UTC timestamp with milliseconds and a latency: their values are timing, which
    # tests/bench measures; here only that they are there and well-formed.
    datetime.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0


def test_threads_are_named_for_top(proxy):
    def names():
        out = set()
        for tid in os.listdir(f"/proc/{proxy.proc.pid}/task"):
            with open(f"/proc/{proxy.proc.pid}/task/{tid}/comm") as f:
                out.add(f.read().strip())
        return out
    # The log writer thread may name itself after the listening line: wait for it.
    wait_for(lambda: {"zg-log-writer", "zg-worker-0"} <= names(), what="the named threads")


def test_unknown_route_404_and_wrong_method_405_are_json_errors(proxy):
    status, _, body = get_json(proxy.port, "/nope")
    assert status == 404
    assert body == {"code": "not_found", "message": "no route for /nope", "details": None, "hint": None}
    status, headers, body = http(proxy.port, "DELETE", "/healthz")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert json.loads(body)["code"] == "method_not_allowed"


def test_head_sends_headers_without_body(proxy):
    c = RawConn(proxy.port)
    c.send(request_bytes("HEAD", "/healthz"))
    c.sock.settimeout(2)
    data = b""
    while b"\r\n\r\n" not in data:
        data += c.sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"Content-Length: 15" in head
    c.send(request_bytes("GET", "/healthz"))  # the connection is still in sync: no stray body
    c.buf = rest
    status, _, body = c.read_response()
    assert status == 200 and body == b'{"status":"ok"}'


def test_keep_alive_serves_many_requests_on_one_connection(proxy):
    c = RawConn(proxy.port)
    ids = set()
    for _ in range(20):
        c.send(request_bytes("GET", "/healthz"))
        status, headers, _ = c.read_response()
        assert status == 200
        assert "connection" not in headers  # HTTP/1.1 default keep-alive
        ids.add(headers["x-request-id"])
    assert len(ids) == 20


def test_pipelined_requests_in_one_write_are_answered_in_order(proxy):
    c = RawConn(proxy.port)
    reqs = b"".join(request_bytes("GET", p, {"X-Request-Id": "p%d" % i})
                    for i, p in enumerate(["/healthz", "/missing", "/healthz", "/also-missing"] * 10))
    c.send(reqs)
    got = []
    for _ in range(40):
        status, headers, _ = c.read_response()
        got.append((status, headers["x-request-id"]))
    assert got == [((200, 404)[i % 2], "p%d" % i) for i in range(40)]


def test_pipeline_deeper_than_max_pipelined_still_completes(proxy_factory):
    p = proxy_factory({"server": {"max_pipelined": 2}})
    c = RawConn(p.port)
    c.send(b"".join(request_bytes("GET", "/healthz", {"X-Request-Id": "q%d" % i}) for i in range(50)))
    ids = [c.read_response()[1]["x-request-id"] for _ in range(50)]
    assert ids == ["q%d" % i for i in range(50)]


def test_chunked_request_body_is_parsed(proxy):
    c = RawConn(proxy.port)
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    c.send(request_bytes("POST", "/healthz", {"Transfer-Encoding": "chunked"}) + body +
           request_bytes("GET", "/healthz"))
    assert c.read_response()[0] == 405  # the route is GET-only, but the body was consumed
    assert c.read_response()[0] == 200  # and the next request on the wire parses cleanly


def test_malformed_request_gets_400_json_and_close(proxy):
    c = RawConn(proxy.port)
    c.send(b"GARBAGE\r\n\r\n")
    status, headers, body = c.read_response()
    assert status == 400
    assert headers["connection"] == "close"
    assert json.loads(body)["code"] == "malformed_request"
    assert c.at_eof()


def test_limits_give_414_431_413(proxy_factory):
    p = proxy_factory({"server": {"max_url_bytes": 128, "max_header_bytes": 512, "max_headers": 8,
                                  "max_body_bytes": 64}})
    cases = [
        (request_bytes("GET", "/" + "a" * 200), 414, "uri_too_long"),
        (request_bytes("GET", "/healthz", {"X-Big": "b" * 600}), 431, "headers_too_large"),
        (request_bytes("GET", "/healthz", {"X-H%d" % i: "1" for i in range(12)}), 431, "headers_too_large"),
        (request_bytes("POST", "/healthz", {"Content-Length": "65"}) + b"x" * 65, 413, "body_too_large"),
        (request_bytes("POST", "/healthz", {"Transfer-Encoding": "chunked"}) +
         b"40\r\n" + b"y" * 64 + b"\r\n1\r\nz\r\n0\r\n\r\n", 413, "body_too_large"),
    ]
    for raw, want_status, want_code in cases:
        c = RawConn(p.port)
        c.send(raw)
        status, headers, body = c.read_response()
        assert (status, json.loads(body)["code"]) == (want_status, want_code)
        assert headers["connection"] == "close"
        assert c.at_eof()
        c.close()
    # The server is fine afterwards.
    assert http(p.port, "GET", "/healthz")[0] == 200


def test_slow_headers_time_out_with_408(proxy_factory):
    p = proxy_factory({"server": {"header_timeout": "500ms"}})
    c = RawConn(p.port)
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes the headers
    t0 = time.time()
    status, headers, body = c.read_response()
    assert status == 408 and json.loads(body)["code"] == "request_timeout"
    assert c.at_eof()


def test_slow_body_times_out(proxy_factory):
    p = proxy_factory({"server": {"body_timeout": "500ms"}})
    c = RawConn(p.port)
    c.send(request_bytes("POST", "/healthz", {"Content-Length": "100"}) + b"only a little")
    status, _, _ = c.read_response()
    assert status == 408
    assert c.at_eof()


def test_idle_keep_alive_connection_is_closed(proxy_factory):
    p = proxy_factory({"server": {"idle_timeout": "500ms"}})
    c = RawConn(p.port)
    c.send(request_bytes("GET", "/healthz"))
    assert c.read_response()[0] == 200
    assert c.at_eof(timeout=5)


def test_http10_without_keep_alive_closes_after_response(proxy):
    c = RawConn(proxy.port)
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
    status, headers, _ = c.read_response()
    assert status == 200 and headers["connection"] == "close"
    assert c.at_eof()


def test_client_half_close_still_gets_answers(proxy):
    import socket
    c = RawConn(proxy.port)
    c.send(request_bytes("GET", "/healthz") + request_bytes("GET", "/healthz"))
    c.sock.shutdown(socket.SHUT_WR)
    assert c.read_response()[0] == 200
    assert c.read_response()[0] == 200
    assert c.at_eof()


def test_sigterm_closes_idle_connections_and_exits_zero(proxy_factory):
    # A drain far longer than stop() waits: if the idle connection held it, stop() would time
    # out and kill the proxy (a non-zero status).
    p = proxy_factory({"server": {"drain_timeout": "300s"}}, name="sigterm")
    c = RawConn(p.port)
    c.send(request_bytes("GET", "/healthz"))
    assert c.read_response()[0] == 200
    assert p.stop(signal.SIGTERM) == 0
    assert c.at_eof()
    assert p.logs("draining") and p.logs("stopped")


def test_version_flag():
    out = run_cli(["--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("zonegate-proxy ") and out.stdout.strip().count(".") == 2


def test_check_config_accepts_good_and_lists_every_problem(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("server:\n  port: 8090\n")
    out = run_cli(["--check-config", "--config", str(good)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "configuration is valid" in out.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: eighty\n  idle_timeout: 5\nlogg: {}\n")
    out = run_cli(["--check-config", "--config", str(bad)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[0].endswith("3 problems in %s:" % bad)
    assert lines[1].strip() == '%s:2:9: server.port: expected an integer, got "eighty"' % bad
    assert lines[2].strip().startswith("%s:3:17: server.idle_timeout: expected a duration" % bad)
    assert lines[3].strip() == '%s:4:1: unknown key "logg" (did you mean "log"?)' % bad


def test_bad_yaml_refuses_to_start_with_position(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("server:\n  port: [8080\n")
    out = run_cli(["--config", str(bad)], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 1
    assert "%s:3:1: invalid YAML" % bad in out.stderr


def test_unusable_listen_address_is_a_clear_startup_error(tmp_path):
    cfg = tmp_path / "badhost.yaml"
    cfg.write_text("server:\n  host: 999.1.1.1\n  port: 1\n")
    out = run_cli(["--config", str(cfg)], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 1
    assert 'server.host "999.1.1.1" is not an IPv4 or IPv6 address' in out.stderr


def test_a_port_another_process_listens_on_is_refused(proxy, tmp_path, cluster):
    """SO_REUSEPORT would let a second proxy share the first one's port (and its traffic)
    silently; the second one must fail to start instead."""
    cfg = tmp_path / "second.yaml"
    cfg.write_text(yaml.safe_dump({
        "profile": "dev", "server": {"host": "127.0.0.1", "port": proxy.port, "workers": 2},
        "database": {"conninfo": cluster.conninfo}}))
    out = run_cli(["--config", str(cfg)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 1, out.stdout + out.stderr
    assert (f"cannot listen on 127.0.0.1:{proxy.port}: Address already in use (another process "
            "listens there)") in out.stderr
    assert http(proxy.port, "GET", "/healthz")[0] == 200


def read_json_lines(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def test_log_file_is_reopened_on_sighup_for_rotation(proxy_factory, tmp_path):
    log = tmp_path / "proxy.log"
    p = proxy_factory({"log": {"level": "info", "file": str(log)}}, name="rotate", wait=False)
    listening = lambda: [l for l in read_json_lines(log) if l.get("msg") == "listening"]
    wait_for(listening, what="the listening line in the log file")
    p.port = listening()[0]["port"]
    assert http(p.port, "GET", "/healthz", {"X-Request-Id": "before-rotate"})[0] == 200
    wait_for(lambda: any(l.get("request_id") == "before-rotate" for l in read_json_lines(log)),
             what="the first access line")
    os.rename(log, tmp_path / "proxy.log.1")
    p.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: log.exists(), what="a new log file after SIGHUP")
    assert http(p.port, "GET", "/healthz", {"X-Request-Id": "after-rotate"})[0] == 200
    wait_for(lambda: any(l.get("request_id") == "after-rotate" for l in read_json_lines(log)),
             what="the access line in the new file")
    old = read_json_lines(tmp_path / "proxy.log.1")
    assert any(l.get("request_id") == "before-rotate" for l in old)
    assert not any(l.get("request_id") == "after-rotate" for l in old)
    # The proxy is still healthy after the reopen; its own output carried no log lines.
    assert http(p.port, "GET", "/healthz")[0] == 200
    assert not p.lines


def test_logs_can_go_to_stdout(tmp_path, cluster):
    cfg = tmp_path / "stdout.yaml"
    cfg.write_text(yaml.safe_dump({
        "profile": "dev", "server": {"host": "127.0.0.1", "port": 0, "workers": 1},
        "database": {"conninfo": cluster.conninfo},
        "log": {"level": "info", "file": "stdout"}}))
    err = open(tmp_path / "stderr.txt", "wb")
    proc = subprocess.Popen([str(PROXY_BIN), "--config", str(cfg)], stdout=subprocess.PIPE,
                            stderr=err)
    try:
        port = None
        deadline = time.time() + 20
        while port is None and time.time() < deadline:
            line = json.loads(proc.stdout.readline() or b"{}")
            if line.get("msg") == "listening":
                port = line["port"]
        assert port, "no listening line on stdout"
        assert http(port, "GET", "/healthz", {"X-Request-Id": "on-stdout"})[0] == 200
        while True:
            line = json.loads(proc.stdout.readline() or b"{}")
            assert line, "stdout ended before the access line"
            if line.get("request_id") == "on-stdout":
                assert line["msg"] == "access" and line["status"] == 200
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        err.close()
    assert b'"msg"' not in (tmp_path / "stderr.txt").read_bytes()


def test_access_lines_wait_for_the_flush_interval_and_sigterm_writes_them(proxy_factory,
                                                                         tmp_path, cluster):
    """log.access_log_flush: a worker holds its lines until the interval (10 s here, far beyond
    this test's requests) or 64 KiB; stopping the proxy writes what it holds."""
    log = tmp_path / "held.log"
    p = proxy_factory({"log": {"level": "info", "file": str(log), "access_log_flush": "10s"},
                       "server": {"workers": 1}}, name="held", wait=False)
    listening = lambda: [l for l in read_json_lines(log) if l.get("msg") == "listening"]
    wait_for(listening, what="the listening line in the log file")
    p.port = listening()[0]["port"]
    for i in range(3):
        assert http(p.port, "GET", "/healthz", {"X-Request-Id": f"held-{i}"})[0] == 200
    # Make the proxy write later lines of its own (its control connection ends and comes
    # back), and wait for them: lines are written in order, so access lines that were not held
    # would be in the file by then. No fixed window.
    listens = lambda: [l for l in read_json_lines(log) if l.get("msg") == "listening for changes"]
    wait_for(listens, what="the first LISTEN")
    cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'zonegate-proxy-listen'")
    wait_for(lambda: len(listens()) >= 2, what="the proxy to listen again")
    ids = lambda: {l.get("request_id") for l in read_json_lines(log)}
    assert not ids() & {"held-0", "held-1", "held-2"}, "lines were written before the interval"
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(timeout=30) == 0
    assert {"held-0", "held-1", "held-2"} <= ids()
