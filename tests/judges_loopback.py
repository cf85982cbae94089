"""A real chat-completions HTTP server on loopback, for the judge tests and the benchmark.

``ChatServer(script)`` serves ``POST /v1/chat/completions`` and ``GET /v1/models`` from a
threaded ``http.server`` with HTTP/1.1 keep-alive. ``script(request, n)`` gets the parsed JSON
body and the request's ordinal and returns a :class:`Scripted` reply (status, body, delay).
:func:`fake_vlm` is a script that behaves like a cooperative VLM: stage 1 reads the scene
pixel of the image it was sent (see fixtures/judges_toy.py), stage 2 compares the two texts.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from judges_toy import CASES, SCENES, scene_image, scene_of
from unisandbox.answers import words


@attrs.frozen
class Scripted:
    """What the server answers: a status, a body (dict -> JSON; str/bytes sent as they are)."""

    body: Any
    status: int = 200
    delay: float = 0.0


def completion(text: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}]}


def image_of(request: dict[str, Any]) -> Image.Image | None:
    content = request["messages"][0]["content"]
    if isinstance(content, str):
        return None
    url = next(p["image_url"]["url"] for p in content if p["type"] == "image_url")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def prompt_of(request: dict[str, Any]) -> str:
    content = request["messages"][0]["content"]
    return content if isinstance(content, str) else next(p["text"] for p in content if p["type"] == "text")


def _field(text: str, *labels: str) -> str:
    for label in labels:
        match = re.search(rf"^{label}:\s*(.*)$", text, re.M)
        if match:
            return match.group(1)
    raise AssertionError(f"none of {labels} in the stage-2 prompt:\n{text}")


def fake_vlm_reply(request: dict[str, Any]) -> str:
    """What a cooperative VLM says to our two prompts."""
    prompt, image = prompt_of(request), image_of(request)
    if image is not None:
        scene = scene_of(image)
        if "Caption:" in prompt:
            return f"Caption: {scene}"
        if "Object:" in prompt:
            return f"Object: {scene}"
        return scene
    description = _field(prompt, "Caption", "Identified object", "Description")
    expected = _field(prompt, "Expected answer", "Ground truth")
    same = words(description.split(": ")[-1]) == words(expected)
    return f"The caption says {description}; expected {expected}.\nScore: {'YES' if same else 'NO'}"


def fake_vlm(request: dict[str, Any], n: int) -> Scripted:
    return Scripted(completion(fake_vlm_reply(request)))


class ChatServer:
    """A threaded loopback server; ``requests`` records (path, headers, body) of each call."""

    def __init__(self, script: Callable[[dict[str, Any], int], Scripted] = fake_vlm,
                 latency: float = 0.0, model: str = "toy-vlm", drop_connections: bool = False) -> None:
        self.script, self.latency, self.model = script, latency, model
        self.drop_connections = drop_connections
        # drop_connections: close every connection after its reply without saying so, as a
        # server's idle timeout does to a kept-alive connection
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as production servers do (uvicorn sets NODELAY)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else (
                    body.encode() if isinstance(body, str) else json.dumps(body).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)  # fails when the client gave up (timeout tests)

            def do_GET(self) -> None:
                server._record(self.path, dict(self.headers), None)
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = json.loads(body)
                n = server._record(self.path, dict(self.headers), request)
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    reply = server.script(request, n)
                    time.sleep(server.latency + reply.delay)
                    self._send(reply.status, reply.body)
                    if server.drop_connections:
                        self.close_connection = True
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _record(self, path: str, headers: dict[str, str], body: Any) -> int:
        with self._lock:
            self.requests.append((path, headers, body))
            return len(self.requests) - 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def posts(self) -> list[Any]:
        return [body for path, _, body in self.requests if body is not None]

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


__all__ = ["CASES", "SCENES", "ChatServer", "Scripted", "completion", "fake_vlm", "fake_vlm_reply",
           "image_of", "prompt_of", "scene_image", "scene_of"]
