"""A loopback OpenAI-compatible chat server for tests and benchmarks.

    with FakeOpenAIServer(latency_s=0.2, faults={"rate_limit": 0.1, "reset": 0.1}) as srv:
        os.environ["VLLM_API_BASE"] = srv.base_url      # http://127.0.0.1:PORT/v1
        ...                                               # stages reach it through LiteLLM
        assert srv.request_count == ...

`POST /v1/chat/completions` answers with a real `chat.completion` body (with usage). The content
comes from `responder(body) -> str`; the default one is deterministic, and when the request asks
for `response_format: json_schema` it returns a small valid instance of that schema.

Faults (`faults=`), each a way real endpoints fail:
  rate_limit (429 + Retry-After), server_error (500), unavailable (503), timeout (holds the request
  past the client timeout), reset (TCP RST, no response), malformed (200, body not JSON),
  truncated (200, JSON cut in half), empty_choices (200, `choices: []`); and two permanent ones:
  auth (401, echoing the presented key the way careless proxies do), bad_request (400).
`faults` is a mapping kind -> probability (drawn per request from `seed`), a scripted sequence of
kinds or None by arrival order, or a callable `(body, index) -> kind | None`.

The server binds 127.0.0.1 on a free port, serves from a daemon thread, and shuts itself down
after `max_requests` requests or `time_limit_s` seconds, so a broken test cannot leave it behind.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = ("rate_limit", "server_error", "unavailable", "timeout", "reset", "malformed",
               "truncated", "empty_choices", "auth", "bad_request")

Responder = Callable[[dict], str]
FaultSpec = Mapping[str, float] | Sequence[str | None] | Callable[[dict, int], str | None] | None


# --- schema instances -----------------------------------------------------------------------


def schema_instance(schema: dict, root: dict | None = None, _depth: int = 0) -> Any:
    """A small valid instance of a JSON schema (the subset LLM structured outputs use)."""
    root = root if root is not None else schema
    if _depth > 32:
        raise ValueError("schema nests too deep (recursive $ref?)")
    if "$ref" in schema:
        return schema_instance(_resolve(schema["$ref"], root), root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return schema_instance(options[0], root, _depth + 1)
    if schema.get("allOf"):
        merged: dict = {}
        for part in schema["allOf"]:
            part = _resolve(part["$ref"], root) if "$ref" in part else part
            merged = _merge(merged, part)
        return schema_instance(merged, root, _depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        props = schema.get("properties") or {}
        return {name: schema_instance(sub, root, _depth + 1) for name, sub in props.items()}
    if typ == "array":
        n = max(1, int(schema.get("minItems", 1)))
        if schema.get("maxItems") is not None:
            n = min(n, int(schema["maxItems"]))
        prefix = schema.get("prefixItems") or []
        items = schema.get("items") or {"type": "string"}
        out = [schema_instance(s, root, _depth + 1) for s in prefix[:n]]
        out += [schema_instance(items, root, _depth + 1) for _ in range(n - len(out))]
        if schema.get("uniqueItems") and len(out) > 1:
            out = [_distinct(v, i) for i, v in enumerate(out)]
        return out
    if typ == "string":
        return _string(schema)
    if typ in ("number", "integer"):
        return _number(schema, integer=typ == "integer")
    if typ == "boolean":
        return True
    if typ == "null":
        return None
    raise ValueError(f"unsupported schema type {typ!r}")


def _resolve(ref: str, root: dict) -> dict:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _merge(a: dict, b: dict) -> dict:
    out = {**a, **b}
    if "properties" in a or "properties" in b:
        out["properties"] = {**a.get("properties", {}), **b.get("properties", {})}
    return out


def _string(schema: dict) -> str:
    text = "example"
    lo = int(schema.get("minLength", 0))
    hi = schema.get("maxLength")
    if len(text) < lo:
        text = text + "x" * (lo - len(text))
    if hi is not None:
        text = text[: int(hi)]
    return text


def _number(schema: dict, *, integer: bool) -> float | int:
    lo = schema.get("minimum")
    if lo is None and schema.get("exclusiveMinimum") is not None:
        lo = schema["exclusiveMinimum"] + (1 if integer else 1e-6)
    hi = schema.get("maximum")
    if hi is None and schema.get("exclusiveMaximum") is not None:
        hi = schema["exclusiveMaximum"] - (1 if integer else 1e-6)
    value = lo if lo is not None else (min(hi, 1) if hi is not None else 1)
    return int(value) if integer else float(value)


def _distinct(value: Any, i: int) -> Any:
    if isinstance(value, str):
        return f"{value}{i}" if i else value
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value + i
    return value


def default_responder(body: dict) -> str:
    fmt = body.get("response_format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(schema_instance(schema))
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return "{}"
    digest = hashlib.sha256(
        json.dumps([body.get("messages"), body.get("seed")], sort_keys=True).encode()
    ).hexdigest()[:8]
    return f"Here is a helpful and complete answer ({digest})."


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


# --- the server -----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so fan-out benchmarks measure the client
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms ACK stall
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet: test output stays readable
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.rstrip("/").endswith("/models"):
            names = self.server.owner.served_models or [self.server.owner.model]
            self._json(200, {"object": "list",
                             "data": [{"id": n, "object": "model"} for n in names]})
        else:
            self._json(404, _error("not found", "not_found"))

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, _error(f"no route {self.path}", "not_found"))
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._json(400, _error("request body is not JSON", "invalid_request_error"))
            return
        owner = self.server.owner
        index, fault = owner._admit(body)
        if index is None:
            self._json(503, _error("test server request budget exhausted", "unavailable"))
            return
        try:
            if owner.latency_s:
                owner._stop.wait(owner.latency_s)
            self._respond(owner, body, index, fault)
        finally:
            with owner._lock:
                owner.in_progress -= 1

    def _respond(self, owner: FakeOpenAIServer, body: dict, index: int, fault: str | None
                 ) -> None:
        if fault == "rate_limit":
            self._json(429, _error("rate limit exceeded", "rate_limit_exceeded"),
                       {"Retry-After": f"{owner.retry_after_s:g}"})
        elif fault == "server_error":
            self._json(500, _error("internal error", "server_error"))
        elif fault == "unavailable":
            self._json(503, _error("service unavailable", "unavailable"))
        elif fault == "timeout":
            owner._stop.wait(owner.hang_s)
            self._reset()
        elif fault == "reset":
            self._reset()
        elif fault == "malformed":
            self._raw(200, b"<html>upstream proxy error</html>{not json")
        elif fault == "truncated":
            full = json.dumps(owner._completion(body, index)).encode()
            self._raw(200, full[: len(full) // 2])
        elif fault == "auth":
            key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            self._json(401, _error(f"Incorrect API key provided: {key}", "invalid_api_key"))
        elif fault == "bad_request":
            self._json(400, _error("invalid request", "invalid_request_error"))
        elif fault == "empty_choices":
            out = owner._completion(body, index)
            out["choices"] = []
            self._json(200, out)
        elif self._json(200, owner._completion(body, index)):
            with owner._lock:
                owner.completed += 1

    def _json(self, status: int, payload: dict, headers: Mapping[str, str] | None = None
              ) -> bool:
        return self._raw(status, json.dumps(payload).encode(), headers)

    def _raw(self, status: int, data: bytes, headers: Mapping[str, str] | None = None) -> bool:
        """Send a response; False when the client was gone."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False

    def _reset(self) -> None:
        """Drop the connection with a TCP RST, sending nothing."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": code, "code": code, "param": None}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # fan-out benchmarks open many connections at once
    owner: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and client disconnects are expected here


class FakeOpenAIServer:
    """Loopback OpenAI-compatible chat server; use as a context manager."""

    def __init__(self, responder: Responder | None = None, latency_s: float = 0.0,
                 faults: FaultSpec = None, max_requests: int = 10000, seed: int = 0, *,
                 retry_after_s: float = 0.05, hang_s: float = 30.0,
                 time_limit_s: float = 900.0, model: str = "test-model",
                 served_models: Sequence[str] | None = None):
        if isinstance(faults, Mapping):
            unknown = set(faults) - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
            if sum(faults.values()) > 1.0 + 1e-9:
                raise ValueError("fault probabilities sum to more than 1")
        elif isinstance(faults, Sequence) and not isinstance(faults, str):
            unknown = {f for f in faults if f is not None} - set(FAULT_KINDS)
            if unknown:
                raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        self.responder = responder or default_responder
        self.latency_s = latency_s
        self.faults = faults
        self.max_requests = max_requests
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.time_limit_s = time_limit_s
        self.model = model
        self.served_models = list(served_models or [])  # GET /models (as vLLM lists its LoRAs)
        self.requests: list[dict] = []
        self.outcomes: list[str] = []  # per request, by arrival: "ok" or the fault kind
        self.completed = 0  # successful completions fully sent to the client
        self.arrivals: list[float] = []  # time.monotonic() of each request, by arrival
        self.in_progress = 0  # admitted requests not yet answered
        self.exhausted = False
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle --
    def start(self) -> FakeOpenAIServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fake-openai-server", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.time_limit_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases held (`timeout`) requests and latency waits
        if self._timer is not None:
            self._timer.cancel()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            if threading.current_thread() is not self._thread:
                httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_until_quiet(self, quiet_s: float = 0.5, timeout_s: float = 60.0) -> None:
        """Block until no request is being answered and none has arrived for `quiet_s`.

        A killed client can leave a request in its socket that the server reads after the
        kill: counting requests before then races with it."""
        deadline = time.monotonic() + timeout_s
        last, quiet_since = None, time.monotonic()
        while True:
            with self._lock:
                state = (len(self.requests), self.in_progress)
            now = time.monotonic()
            if state != last or state[1]:
                last, quiet_since = state, now
            elif now - quiet_since >= quiet_s:
                return
            if now > deadline:
                raise TimeoutError(f"test server still busy after {timeout_s:g}s: "
                                   f"{state[1]} requests in progress")
            time.sleep(0.01)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def outcome_counts(self) -> Counter:
        with self._lock:
            return Counter(self.outcomes)

    # -- per request --
    def _admit(self, body: dict) -> tuple[int | None, str | None]:
        with self._lock:
            if len(self.requests) >= self.max_requests:
                if not self.exhausted:
                    self.exhausted = True
                    threading.Thread(target=self.stop, daemon=True).start()
                return None, None
            index = len(self.requests)
            self.in_progress += 1
            self.requests.append(body)
            self.arrivals.append(time.monotonic())
            fault = self._pick_fault(body, index)
            self.outcomes.append(fault or "ok")
        return index, fault

    def _pick_fault(self, body: dict, index: int) -> str | None:
        spec = self.faults
        if spec is None:
            return None
        if callable(spec):
            fault = spec(body, index)
        elif isinstance(spec, Mapping):
            draw, acc, fault = self._rng.random(), 0.0, None
            for kind, prob in spec.items():
                acc += prob
                if draw < acc:
                    fault = kind
                    break
        else:
            fault = spec[index] if index < len(spec) else None
        if fault is not None and fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault!r}")
        return fault

    def _completion(self, body: dict, index: int) -> dict:
        content = self.responder(body)
        prompt = " ".join(str(m.get("content") or "") for m in body.get("messages") or [])
        p, c = _count_tokens(prompt), _count_tokens(content)
        return {
            "id": f"chatcmpl-test-{index}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": body.get("model") or self.model,
            "system_fingerprint": "fp_test",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
        }


def main() -> None:
    """Serve in the foreground (for manual runs): `python -m falsereject.testing.server`."""
    import argparse

    ap = argparse.ArgumentParser(description="loopback OpenAI-compatible test server")
    ap.add_argument("--latency-s", type=float, default=0.0)
    ap.add_argument("--time-limit-s", type=float, default=3600.0)
    args = ap.parse_args()
    with FakeOpenAIServer(latency_s=args.latency_s, time_limit_s=args.time_limit_s) as srv:
        print(f"serving {srv.base_url}", flush=True)
        try:
            while not srv._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
