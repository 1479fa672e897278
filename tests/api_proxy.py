"""A counting, fault-injecting HTTP proxy in front of a real ``vllm serve`` (tests only).

It forwards every request to the server unchanged, counts the generation requests that reach
the server, and can answer some of them itself with an error status first (a server "down for a
while") or from some point on (a server that stays down), or slow them down (so a client can be
killed mid-generation), or add a ``reasoning_content`` field to chat answers (what a reasoning
model's server sends next to ``content``).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")  # http://127.0.0.1:PORT (no /v1)
        self.forwarded = 0  # generation requests that reached the server
        self.refused = 0  # generation requests answered with an injected error
        self.fail_first: list[int] = []  # statuses to answer the next requests with, in order
        self.down_after: int | None = None  # forward this many, then answer 503 to every request
        self.delay_s = 0.0
        self.reasoning: str | None = None  # add it as reasoning_content to each chat answer
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._forward(None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = proxy._decide(self.path)
                if status is not None:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "injected by the test proxy"}}')
                    return
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                self._forward(body)

            def _forward(self, body):
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method=self.command, headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(req, timeout=600) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                if proxy.reasoning is not None and status == 200 and self.path.endswith("/chat/completions"):
                    data = proxy._with_reasoning(data)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed while its request was in flight

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _decide(self, path: str) -> int | None:
        if not path.endswith("/completions"):
            return None
        with self.lock:
            if self.fail_first:
                self.refused += 1
                return self.fail_first.pop(0)
            if self.down_after is not None and self.forwarded >= self.down_after:
                self.refused += 1
                return 503
            self.forwarded += 1
            return None

    def _with_reasoning(self, data: bytes) -> bytes:
        """What a reasoning model's server answers: the thinking next to the content."""
        import json

        body = json.loads(data)
        for choice in body.get("choices", []):
            choice["message"]["reasoning_content"] = self.reasoning
        return json.dumps(body).encode()

    def reset(self) -> None:
        with self.lock:
            self.forwarded = self.refused = 0
            self.fail_first, self.down_after, self.delay_s, self.reasoning = [], None, 0.0, None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
