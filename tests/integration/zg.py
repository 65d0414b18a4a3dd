"""Helpers for the integration suites: throwaway Postgres clusters (through the one shell helper,
tests/lib/pgcluster.sh), the real zonegate-proxy binary, and raw HTTP over loopback."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PGCLUSTER = ROOT / "tests" / "lib" / "pgcluster.sh"
PROXY_BIN = Path(os.environ.get("ZONEGATE_PROXY_BIN", ROOT / "build" / "proxy" / "zonegate-proxy"))
ARTIFACTS = Path(os.environ.get("ZONEGATE_ARTIFACTS", ROOT / "tests" / ".artifacts"))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def keep_server_log(log, name):
    """Copies a cluster's server log to the artifacts before the cluster goes: tests/run.sh reads
    every one for backend crashes, sanitizer reports and unexpected PANIC/FATAL lines."""
    artifacts = os.environ.get("ZONEGATE_ARTIFACTS")
    if artifacts and Path(log).exists():
        dest = Path(artifacts, "pg-logs")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, dest / ("%s.log" % name))


class Cluster:
    """A throwaway PostgreSQL cluster with the zonegate extension installed in `dbname`."""

    def __init__(self, dbname="zonegate"):
        self.dir = tempfile.mkdtemp(prefix="zonegate-pg.")
        out = subprocess.run([str(PGCLUSTER), "start", self.dir], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError("pgcluster start failed: " + out.stderr)
        self.env = {}
        for line in Path(self.dir, "env").read_text().splitlines():
            k, _, v = line.partition("=")
            self.env[k] = v
        self.host = self.env["PGHOST"]
        self.port = int(self.env["PGPORT"])
        self.dbname = dbname
        try:
            self.psql("CREATE DATABASE %s" % dbname, db="postgres")
            self.psql("CREATE EXTENSION zonegate")
        except BaseException:
            self.destroy()
            raise

    @property
    def conninfo(self):
        return "host=%s port=%d dbname=%s user=postgres" % (self.host, self.port, self.dbname)

    def psql(self, sql, db=None, check=True):
        env = dict(os.environ)
        env.update(self.env)
        env["PGDATABASE"] = db or self.dbname
        out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             capture_output=True, text=True, env=env)
        if check and out.returncode != 0:
            raise RuntimeError("psql failed: %s\n%s" % (sql, out.stderr))
        return out.stdout.strip()

    def connect(self, db=None):
        import psycopg2
        conn = psycopg2.connect(host=self.host, port=self.port, user="postgres",
                                dbname=db or self.dbname)
        return conn

    def stop(self):
        subprocess.run([str(PGCLUSTER), "stop", self.dir], check=True)

    def start(self):
        subprocess.run([str(PGCLUSTER), "start", self.dir, "--port", str(self.port)], check=True,
                       capture_output=True)

    def destroy(self):
        subprocess.run([str(PGCLUSTER), "stop", self.dir], check=False)
        keep_server_log(Path(self.dir, "server.log"), "%s-%s" % (self.dbname, Path(self.dir).name))
        subprocess.run([str(PGCLUSTER), "destroy", self.dir], check=False)


def with_admin_port(config_text):
    """The config with admin.port 0 (a port the kernel picks, read back from the "admin
    listening" log line) unless it names one: proxies of one run must not share the default."""
    import yaml
    try:
        cfg = yaml.safe_load(config_text)
    except yaml.YAMLError:
        return config_text  # a test of a broken config: leave it as it is
    if not isinstance(cfg, dict):
        return config_text
    admin = cfg.get("admin")
    if admin is None:
        cfg["admin"] = {"port": 0}
    elif isinstance(admin, dict) and "port" not in admin:
        admin["port"] = 0
    else:
        return config_text
    return yaml.safe_dump(cfg, sort_keys=False)


class Replica(Cluster):
    """A streaming hot standby of `primary` (pg_basebackup -R): read-only, replaying the
    primary's WAL, its own port and socket."""

    def __init__(self, primary):
        self.dir = tempfile.mkdtemp(prefix="zonegate-replica.")
        out = subprocess.run([str(PGCLUSTER), "replica", self.dir, "--from", primary.dir],
                             capture_output=True, text=True)
        if out.returncode != 0:
            subprocess.run([str(PGCLUSTER), "destroy", self.dir], check=False)
            raise RuntimeError("pgcluster replica failed: " + out.stderr)
        self.env = {}
        for line in Path(self.dir, "env").read_text().splitlines():
            k, _, v = line.partition("=")
            self.env[k] = v
        self.host = self.env["PGHOST"]
        self.port = int(self.env["PGPORT"])
        self.dbname = primary.dbname
        self.primary = primary

    def caught_up(self):
        """Whether this replica has replayed everything the primary has written so far."""
        # The insert position, not pg_current_wal_lsn(): the clusters run with
        # synchronous_commit off, so a commit just made may still sit in the WAL buffers, before
        # the write position; the replica is caught up once it replayed that too.
        want = self.primary.psql("SELECT pg_current_wal_insert_lsn()", db="postgres")
        return self.psql("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % want, db="postgres") == "t"

    def wait_caught_up(self, timeout=20):
        wait_for(self.caught_up, timeout=timeout, what="the replica to replay the primary's WAL")


class Proxy:
    """The real zonegate-proxy binary on a kernel-chosen port, its JSON log lines collected."""

    def __init__(self, config_text, name="proxy", env=None, wait=True):
        self.dir = tempfile.mkdtemp(prefix="zonegate-proxy.")
        self.config_path = os.path.join(self.dir, "zonegate.yaml")
        with open(self.config_path, "w") as f:
            f.write(with_admin_port(config_text))
        self.name = name
        self.lines = []
        self.raw = []
        self._cv = threading.Condition()
        self.proc = subprocess.Popen([str(PROXY_BIN), "--config", self.config_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = None
        self.admin_port = None
        if wait:
            line = self.wait_for_log(lambda l: l.get("msg") == "listening", timeout=20)
            self.port = line["port"]
            admin = self.logs("admin listening")
            self.admin_port = admin[0]["port"] if admin else None

    def _read(self):
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cv:
                self.raw.append(text)
                try:
                    self.lines.append(json.loads(text))
                except ValueError:
                    pass
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_for_log(self, pred, timeout=10):
        deadline = time.time() + timeout
        with self._cv:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if pred(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.time()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError("log line not seen; output:\n" + "\n".join(self.raw[-40:]))
                self._cv.wait(min(left, 0.2))

    def logs(self, msg=None):
        with self._cv:
            return [l for l in self.lines if msg is None or l.get("msg") == msg]

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def admin_base(self):
        return "http://127.0.0.1:%d" % self.admin_port

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the proxy; returns its exit code. Sanitizer reports fail the caller."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("proxy did not exit within %ss of %s" % (timeout, sig))
        self._reader.join(5)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / ("proxy-%s-%d.log" % (self.name, self.proc.pid))).write_text("\n".join(self.raw))
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode

    def sanitizer_reports(self):
        return [l for l in self.raw if any(m in l for m in SANITIZER_MARKERS)]


def run_cli(args, **kw):
    """Runs zonegate-proxy with `args` to completion (--check-config, token, a start that fails).
    A sanitizer report in its output fails the caller: under ASan an error path that also
    corrupts memory must not pass as "exited with the expected status"."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    out = subprocess.run([str(PROXY_BIN)] + list(args), **kw)
    text = (out.stdout or "") + (out.stderr or "")
    reports = [l for l in text.splitlines() if any(m in l for m in SANITIZER_MARKERS)]
    assert not reports, "sanitizer report from %s:\n%s" % (" ".join(args), "\n".join(reports))
    return out


def http(port, method, path, headers=None, body=None, timeout=10):
    """One request on a fresh connection; returns (status, headers dict lower-cased, body bytes)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def get_json(port, path, headers=None):
    status, hdrs, body = http(port, "GET", path, headers)
    return status, hdrs, json.loads(body) if body else None


class RawConn:
    """A raw TCP connection for pipelining, slow clients and malformed requests."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def read_response(self):
        """Reads one response; returns (status, headers, body) or None on EOF."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        if status in (204, 304) or 100 <= status < 200:
            n = 0
        while len(rest) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        self.buf = rest[n:]
        return status, headers, rest[:n]

    def at_eof(self, timeout=5):
        """True when the server closed the connection (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def request_bytes(method, path, headers=None, body=b"", version="1.1"):
    h = {"Host": "localhost"}
    h.update(headers or {})
    if body and "Content-Length" not in h and "Transfer-Encoding" not in h:
        h["Content-Length"] = str(len(body))
    out = "%s %s HTTP/%s\r\n" % (method, path, version)
    out += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    return out.encode() + (body if isinstance(body, bytes) else body.encode())


def wait_for(pred, timeout=20, what="condition"):
    """Polls pred until it is true. Tests wait for events this way, never for a fixed time: on a
    loaded machine a sleep that is long enough on a quiet one is not."""
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.01)


def wait_sleeping(cluster, n=1, timeout=20):
    """Waits until n backends run pg_sleep: a slow request has reached Postgres."""
    wait_for(lambda: int(cluster.psql("SELECT count(*) FROM pg_stat_activity "
                                      "WHERE wait_event = 'PgSleep'")) >= n,
             timeout, "%d query(ies) in pg_sleep" % n)
