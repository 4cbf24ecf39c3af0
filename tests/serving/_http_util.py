"""Helpers shared by the HTTP server tests (tests/serving/test_http_*.py): requests over one
connection (http.client, no extra dependency), raw-socket requests for what http.client will
not send (truncated bodies, garbage), and the process's resident memory."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Dict, Optional, Tuple
from urllib.parse import urlsplit

ALLOWED = {200, 400, 413, 415, 503}


class Client:
    """One keep-alive connection to a server; reconnects if the server closed it."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self.conn: Optional[http.client.HTTPConnection] = None

    def request(
        self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None
    ) -> Tuple[int, Dict[str, str], bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                hdrs = {k.lower(): v for k, v in r.getheaders()}
                if hdrs.get("connection") == "close":
                    self.close()
                return r.status, hdrs, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed between requests: retry once, fresh.
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def post_json(self, path: str, doc: object) -> Tuple[int, Dict[str, str], bytes]:
        return self.request("POST", path, json.dumps(doc).encode(), {"Content-Type": "application/json"})

    def get(self, path: str) -> Tuple[int, Dict[str, str], bytes]:
        return self.request("GET", path)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def raw(url: str, data: bytes, half_close: bool = True, timeout: float = 10.0) -> Optional[int]:
    """Sends ``data`` as is over a fresh connection; the status of the answer, or None if the
    server closed the connection without one."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
    if not out.startswith(b"HTTP/1.1 "):
        return None
    return int(out[9:12])


def metrics(client: Client) -> Dict[str, float]:
    """``/metrics`` as {series: value}."""
    status, _, body = client.get("/metrics")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def rss_bytes() -> int:
    """This process's resident set size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")
