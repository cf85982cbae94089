"""``vlm-openai``: the two-stage protocol over any OpenAI-compatible chat-completions server.

The reference set-up is vLLM serving Qwen2.5-VL-7B-Instruct (``vllm serve <path> --port
8000``). Stdlib only: one persistent HTTP/1.1 connection per worker thread, ``concurrency``
items in flight, temperature 0, retries with exponential backoff on timeouts, connection
errors, HTTP 429 and 5xx; then the item's verdict is ``error``. The API key is read from an
environment variable and kept out of the identity, the logs, reprs and error texts (a server
that echoes it back gets it masked).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import UserError
from ..factories import check_number
from ..protocols.judge import Judge
from ..records import JudgeItem, Verdict
from .templates import templates_identity
from .vlm import PROTOCOL_VERSION, ChatRequest, Reply, TwoStage, judge_each

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
_RAW_LIMIT = 4000
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
          http.client.CannotSendRequest)


def data_url(path: Path) -> str:
    """The image as a base64 ``data:`` URL (what chat-completions servers accept inline)."""
    mime = _MIME.get(path.suffix.lower(), "image/png")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


class OpenAIJudge(Judge):
    """Judge with a VLM behind ``{base_url}/chat/completions``.

    ``model`` is the served model name (vLLM: the path or ``--served-model-name``);
    ``api_key_env`` names the environment variable holding the key (unset default: no key,
    as a local vLLM needs none); ``timeout`` is per socket operation, in seconds.
    """

    argument_notes: ClassVar[Mapping[str, str]] = {
        "model": "required: the served model name",
        "api_key_env": f"{DEFAULT_KEY_ENV} (no key sent when it is unset)"}

    def __init__(
        self,
        model: str | None = None,
        base_url: str = "http://localhost:8000/v1",
        api_key_env: str | None = None,
        max_tokens: int = 1024,
        concurrency: int = 32,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 1.0,
        tasks: Sequence[Any] = (),
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError("model= is required: the served model name, e.g. "
                             "--judge-arg model=Qwen2.5-VL-7B-Instruct")
        parts = urlsplit(str(base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port]/path, got {base_url!r}")
        for name, value, whole, low in (("concurrency", concurrency, True, 1), ("retries", retries, True, 0),
                                        ("timeout", timeout, False, 0.001), ("backoff", backoff, False, 0),
                                        ("max_tokens", max_tokens, True, 1)):
            check_number(name, value, whole=whole, low=low)
        if parts.username or parts.password:  # it would land in config.json, never sent
            raise ValueError("base_url holds credentials (user:password@); give the key through "
                             "the environment (api_key_env names the variable)")
        if api_key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(api_key_env)):
            # not echoed: a key pasted here by mistake must not reach a terminal or a log
            raise ValueError("api_key_env must name an environment variable (letters, digits, _), "
                             "not hold the key itself")
        env = api_key_env or DEFAULT_KEY_ENV
        # a key read from a file with Windows line ends carries a \r that no header can hold
        key = (os.environ.get(env) or "").strip()
        if api_key_env and not key:
            raise ValueError(f"environment variable {api_key_env} (api_key_env) is not set")
        if any(not c.isprintable() or c.isspace() or ord(c) > 255 for c in key):
            raise ValueError(f"environment variable {env} holds spaces, control characters or "
                             "characters past Latin-1 (a pasted smart quote?), which an HTTP "
                             "header cannot carry; is it the key alone?")
        self._key = key
        self.model, self.base_url = model, str(base_url).rstrip("/")
        self.max_tokens, self.concurrency = int(max_tokens), int(concurrency)
        self.timeout, self.retries, self.backoff = float(timeout), int(retries), float(backoff)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        prefix = parts.path.rstrip("/").removesuffix("/chat/completions")
        self._chat_path, self._models_path = prefix + "/chat/completions", prefix + "/models"
        self.protocol = TwoStage.for_tasks(tasks)
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"OpenAIJudge(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        # no base_url (the same model elsewhere gives the same verdicts) and never the key
        return {"kind": "vlm-openai", "model": self.model, "max_tokens": self.max_tokens,
                "temperature": 0, "protocol": PROTOCOL_VERSION,
                "templates": templates_identity(self.protocol.templates)}

    # --- judging ------------------------------------------------------------------------
    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        if not items:
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="vlm-openai")
        return list(self._pool.map(lambda item: judge_each(self.protocol, item, self.ask), items))

    def ask(self, request: ChatRequest) -> Reply:
        """One chat completion with retries; never raises for a failed call."""
        try:
            payload = self._payload(request)
        except OSError as exc:
            return Reply(None, error=f"cannot read image {request.image}: {exc.strerror}")
        last, raw = "", ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status, body = self._send("POST", self._chat_path, payload)
            except TimeoutError:
                last, raw = f"timed out after {self.timeout:g} s", ""
                continue
            except (OSError, http.client.HTTPException) as exc:
                last, raw = f"connection failed ({type(exc).__name__}: {exc})", ""
                continue
            text = body.decode("utf-8", "replace")
            if status == 429 or status >= 500:
                last, raw = f"HTTP {status}", text
                continue
            if status >= 400:
                return self._reply(None, f"HTTP {status} (not retried)", text)
            content = _content(text)
            if content is None:
                return self._reply(None, "malformed response (not chat-completions JSON)", text)
            return self._reply(content)
        return self._reply(None, f"{last}; gave up after {self.retries + 1} "
                           f"attempt{'s' if self.retries else ''}", raw)

    def _payload(self, request: ChatRequest) -> bytes:
        if request.image is None:
            content: Any = request.text
        else:
            content = [{"type": "image_url", "image_url": {"url": data_url(request.image)}},
                       {"type": "text", "text": request.text}]
        return json.dumps({"model": self.model, "messages": [{"role": "user", "content": content}],
                           "temperature": 0, "max_tokens": self.max_tokens}).encode()

    def _reply(self, text: str | None, error: str = "", raw: str = "") -> Reply:
        return Reply(None if text is None else self._mask(text), error=self._mask(error),
                     raw=self._mask(raw)[:_RAW_LIMIT])  # masked whole: a cut could split the key

    def _mask(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key and text else text

    # --- HTTP ---------------------------------------------------------------------------
    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if has_body:
            headers["Content-Type"] = "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _connection(self, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn, True
        if conn is not None:
            conn.close()
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn, False

    def _send(self, method: str, path: str, body: bytes | None = None,
              timeout: float | None = None) -> tuple[int, bytes]:
        """One request on this thread's kept-alive connection; a stale one is replaced once."""
        conn, reused = self._connection()
        for again in (reused, False):
            conn.timeout = timeout or self.timeout
            try:
                if conn.sock is None:
                    conn.connect()
                    # headers and body go out in two writes: without NODELAY, Nagle's
                    # algorithm and the peer's delayed ACK add ~40 ms to every call
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.sock.settimeout(conn.timeout)
                conn.request(method, path, body=body, headers=self._headers(body is not None))
                response = conn.getresponse()
                return response.status, response.read()
            except _STALE:
                conn.close()
                if not again:
                    raise
                conn, _ = self._connection(fresh=True)
            except BaseException:
                conn.close()  # the next request on this thread reconnects
                raise
        raise AssertionError("unreachable")

    def ping(self) -> list[str]:
        """Reachability: ``GET {base_url}/models``; the served model ids (empty if not listed)."""
        try:
            status, body = self._send("GET", self._models_path, timeout=min(self.timeout, 10.0))
        except (OSError, http.client.HTTPException) as exc:
            raise UserError(f"cannot reach the judge server at {self.base_url} "
                            f"({type(exc).__name__}: {self._mask(str(exc))}); is it running?") from None
        if status in (401, 403):
            raise UserError(f"the judge server at {self.base_url} refused the API key "
                            f"(HTTP {status}); set the variable api_key_env names")
        if status == 404:
            raise UserError(f"the judge server at {self.base_url} has no {self._models_path} "
                            "(HTTP 404): is base_url the API root? vLLM and most OpenAI-compatible "
                            "servers serve it under /v1")
        if status >= 400:
            return []
        try:
            return [str(m.get("id")) for m in json.loads(body).get("data", [])]
        except (ValueError, AttributeError, TypeError):
            return []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


def _content(body: str) -> str | None:
    """``choices[0].message.content`` of a chat-completions body, or None if it is not one."""
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else None
