"""``medsynth serve``: the local backend as an OpenAI-compatible HTTP server (/v1/completions,
/v1/chat/completions, /v1/models). Standard library HTTP server (no extra dependency); requests are served one
generation at a time (the model is not thread-safe), which is what a 2-core on-prem box can do anyway.
Prompt text is never logged."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import typer

from .models import DEFAULT_MODEL

__all__ = ["make_server", "serve_cmd"]


def make_server(backend: Any, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None) -> ThreadingHTTPServer:
    from .backends.base import GenParams

    lock = threading.Lock()
    name = model_name or backend.model_id

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # no request lines with bodies; status only
            pass

        def _send(self, code: int, obj: dict[str, Any]) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "medsynth"}]})
            elif self.path.rstrip("/") in ("/health", "/v1/health"):
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802
            try:
                n = int(self.headers.get("Content-Length", "0"))
                req = json.loads(self.rfile.read(n) or b"{}")
            except ValueError:
                self._send(400, {"error": {"message": "body is not JSON"}})
                return
            path = self.path.rstrip("/")
            if path == "/v1/completions":
                prompts = req.get("prompt", "")
                prompts = [prompts] if isinstance(prompts, str) else list(prompts)
            elif path == "/v1/chat/completions":
                msgs = req.get("messages") or []
                prompts = ["\n".join(str(m.get("content", "")) for m in msgs)]
            else:
                self._send(404, {"error": {"message": "not found"}})
                return
            stop = req.get("stop") or []
            try:
                params = GenParams(max_new_tokens=int(req.get("max_tokens", 64)), temperature=float(req.get("temperature", 0.8)),
                                   top_p=req.get("top_p", 0.95), top_k=req.get("top_k", 50), stop=[stop] if isinstance(stop, str) else list(stop),
                                   seed=int(req.get("seed", 0)), batch_size=max(1, len(prompts)))
            except (ValueError, TypeError) as e:
                self._send(400, {"error": {"message": f"invalid parameters: {type(e).__name__}"}})
                return
            with lock:
                comps = backend.generate(prompts, params)
            usage = {"prompt_tokens": sum(c.prompt_tokens for c in comps), "completion_tokens": sum(c.completion_tokens for c in comps)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            base = {"id": f"cmpl-{uuid.uuid4().hex[:12]}", "created": int(time.time()), "model": name, "usage": usage}
            if path == "/v1/completions":
                choices = [{"index": i, "text": c.text, "finish_reason": c.finish_reason if c.finish_reason != "error" else "length",
                            "completion_tokens": c.completion_tokens} for i, c in enumerate(comps)]
                self._send(200, {**base, "object": "text_completion", "choices": choices})
            else:
                c = comps[0]
                self._send(200, {**base, "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason}]})

    return ThreadingHTTPServer((host, port), Handler)


def serve_cmd(model: Annotated[str, typer.Option("--model", help="registry name or local HF folder")] = DEFAULT_MODEL,
              host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
              port: Annotated[int, typer.Option("--port")] = 8000,
              adapter: Annotated[str | None, typer.Option("--adapter", help="PEFT adapter folder")] = None) -> None:
    """Serve a local model over an OpenAI-compatible API (for the `openai` backend of other machines/tools)."""
    from .backends.transformers import TransformersBackend

    backend = TransformersBackend(model=model, adapter=adapter)
    srv = make_server(backend, host, port, model)
    typer.echo(f"serving {model} on http://{host}:{port}/v1 (Ctrl-C to stop)")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
