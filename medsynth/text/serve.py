"""``medsynth serve``: the local backend as an OpenAI-compatible HTTP server (/v1/completions,
/v1/chat/completions, /v1/models). Standard library HTTP server (no extra dependency); requests are served one
generation at a time (the model is not thread-safe), which is what a 2-core on-prem box can do anyway.

Requests are validated with pydantic (400 for a body that is not JSON, 422 for JSON of the wrong shape, 404 for an
unknown model; every error is a JSON ``{"error": {...}}``). An optional bearer token (``--api-key`` or
``MEDSYNTH_API_KEY``) is required for binding to anything but the loopback interface. Chat messages go through
the model's chat template when its tokenizer has one. ``n`` returns n choices; ``stream: true`` answers with
server-sent events in OpenAI's chunk format (the completion is generated whole, then sent as one content chunk and
a final chunk per choice, then ``data: [DONE]``). Prompt text is never logged."""

from __future__ import annotations

import hmac
import ipaddress
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .models import DEFAULT_MODEL

__all__ = ["make_server", "serve_cmd", "CompletionRequest", "ChatRequest", "MAX_BODY_BYTES"]

#: the largest request body accepted (a prompt of a few hundred thousand characters)
MAX_BODY_BYTES = 4 * 1024 * 1024


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields we do not use (user, logprobs...)
    model: str | None = None
    max_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_p: float | None = Field(0.95, gt=0.0, le=1.0)
    top_k: int | None = Field(50, ge=1)
    stop: str | list[str] | None = Field(None, validate_default=True)
    seed: int = 0
    n: int = Field(1, ge=1, le=16)
    stream: bool = False

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str]:
        out = [v] if isinstance(v, str) else list(v or [])
        if len(out) > 16:
            raise ValueError("at most 16 stop strings")
        return out


class CompletionRequest(_Common):
    prompt: str | list[str] = Field(min_length=1)

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and len(v) > 64:
            raise ValueError("at most 64 prompts per request")
        return v


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _chat_prompt(backend: Any, messages: list[ChatMessage]) -> str:
    """The prompt of a chat: the model's own chat template when its tokenizer has one, else role-tagged lines."""
    msgs = [{"role": m.role, "content": m.content} for m in messages]
    tok = getattr(backend, "tokenizer", None)
    if tok is not None and getattr(tok, "chat_template", None):
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant:"


def make_server(backend: Any, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None,
                api_key: str | None = None) -> ThreadingHTTPServer:
    """The HTTP server (not started). ``api_key``: required as ``Authorization: Bearer <key>`` on every request;
    refused to be left out when ``host`` is not a loopback address."""
    from .backends.base import GenParams

    if not api_key and not _is_loopback(host):
        raise ValueError(f"serving on {host} (reachable from other machines) needs an API key: pass --api-key or set MEDSYNTH_API_KEY")
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
            if code == 401:
                self.send_header("WWW-Authenticate", "Bearer")
            self.end_headers()
            self.wfile.write(body)

        def _error(self, code: int, message: str, etype: str = "invalid_request_error", param: str | None = None) -> None:
            self._send(code, {"error": {"message": message, "type": etype, "param": param, "code": code}})

        def _authorized(self) -> bool:
            if not api_key:
                return True
            got = self.headers.get("Authorization", "")
            ok = got.startswith("Bearer ") and hmac.compare_digest(got[7:].strip().encode(), api_key.encode())
            if not ok:
                self._error(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "authentication_error")
            return ok

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.rstrip("/")
            if path in ("/health", "/v1/health"):
                self._send(200, {"status": "ok"})
            elif not self._authorized():
                return
            elif path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "medsynth"}]})
            else:
                self._error(404, "not found: use /v1/models, /v1/completions or /v1/chat/completions", "not_found_error")

        def _read_json(self) -> tuple[Any, bool]:
            """(body, True), or (None, False) after answering the error."""
            try:
                n = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                n = -1
            if n < 0:
                self._error(400, "invalid Content-Length header")
                return None, False
            if n > MAX_BODY_BYTES:
                self.close_connection = True  # the unread body must not be parsed as the next request
                self._error(413, f"request body over {MAX_BODY_BYTES:,} bytes")
                return None, False
            try:
                return json.loads(self.rfile.read(n) or b"null"), True
            except (ValueError, UnicodeDecodeError):
                self._error(400, "the body is not JSON")
                return None, False

        def do_POST(self) -> None:  # noqa: N802
            try:
                self._post()
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception as e:  # an answer, never a dropped connection or a traceback with a prompt in it
                try:
                    self._error(500, f"internal error ({type(e).__name__})", "server_error")
                except OSError:
                    pass

        def _post(self) -> None:
            if not self._authorized():
                return
            path = self.path.rstrip("/")
            if path not in ("/v1/completions", "/v1/chat/completions"):
                self._error(404, "not found: use /v1/completions or /v1/chat/completions", "not_found_error")
                return
            raw, ok = self._read_json()
            if not ok:
                return
            chat = path == "/v1/chat/completions"
            try:
                req: CompletionRequest | ChatRequest = (ChatRequest if chat else CompletionRequest).model_validate(raw)
            except ValidationError as e:
                errs = e.errors()
                where = ".".join(map(str, errs[0]["loc"])) if errs and errs[0]["loc"] else None
                detail = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in errs[:5])
                self._error(422, f"invalid request: {detail}", param=where)
                return
            if req.model is not None and req.model != name:
                self._error(404, f"model '{req.model}' is not served here; this server serves '{name}' (see /v1/models)", "not_found_error", "model")
                return
            if chat:
                prompts = [_chat_prompt(backend, req.messages)]  # type: ignore[union-attr]
            else:
                prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)  # type: ignore[union-attr]
            prompts = [p for p in prompts for _ in range(req.n)]
            params = GenParams(max_new_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                               stop=req.stop, seed=req.seed, batch_size=max(1, min(len(prompts), 16)))  # type: ignore[arg-type]
            try:
                with lock:
                    comps = backend.generate(prompts, params)
            except Exception as e:  # never the prompt in the answer or a log
                self._error(500, f"generation failed ({type(e).__name__})", "server_error")
                return
            usage = {"prompt_tokens": sum(c.prompt_tokens for c in comps), "completion_tokens": sum(c.completion_tokens for c in comps)}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:12]}"
            base = {"id": rid, "created": int(time.time()), "model": name}

            def finish(c: Any) -> str:
                return c.finish_reason if c.finish_reason in ("stop", "length") else "length"

            if req.stream:
                self._stream(base, comps, chat, finish)
                return
            if chat:
                choices = [{"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": finish(c)} for i, c in enumerate(comps)]
                self._send(200, {**base, "object": "chat.completion", "choices": choices, "usage": usage})
            else:
                choices = [{"index": i, "text": c.text, "finish_reason": finish(c), "logprobs": None, "completion_tokens": c.completion_tokens}
                           for i, c in enumerate(comps)]
                self._send(200, {**base, "object": "text_completion", "choices": choices, "usage": usage})

        def _stream(self, base: dict[str, Any], comps: list[Any], chat: bool, finish: Any) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            obj = "chat.completion.chunk" if chat else "text_completion"

            def event(payload: Any) -> None:
                self.wfile.write(b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode()) + b"\n\n")
                self.wfile.flush()

            for i, c in enumerate(comps):
                if chat:
                    event({**base, "object": obj, "choices": [{"index": i, "delta": {"role": "assistant", "content": c.text}, "finish_reason": None}]})
                    event({**base, "object": obj, "choices": [{"index": i, "delta": {}, "finish_reason": finish(c)}]})
                else:
                    event({**base, "object": obj, "choices": [{"index": i, "text": c.text, "finish_reason": None, "logprobs": None}]})
                    event({**base, "object": obj, "choices": [{"index": i, "text": "", "finish_reason": finish(c), "logprobs": None}]})
            event(b"[DONE]")
            self.close_connection = True

    return ThreadingHTTPServer((host, port), Handler)


def serve_cmd(model: Annotated[str, typer.Option("--model", help="registry name or local HF folder")] = DEFAULT_MODEL,
              host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
              port: Annotated[int, typer.Option("--port")] = 8000,
              adapter: Annotated[str | None, typer.Option("--adapter", help="PEFT adapter folder")] = None,
              api_key: Annotated[str | None, typer.Option("--api-key", envvar="MEDSYNTH_API_KEY", show_envvar=True,
                                                          help="require 'Authorization: Bearer KEY' (required unless --host is loopback)")] = None) -> None:
    """Serve a local model over an OpenAI-compatible API (for the `openai` backend of other tools or machines; binding
    to anything but localhost needs --api-key)."""
    if not api_key and not _is_loopback(host):
        raise typer.BadParameter(f"serving on {host} makes the model reachable from other machines: pass --api-key KEY "
                                 "(or set MEDSYNTH_API_KEY) and give the key to the clients", param_hint="--api-key")
    from .backends.transformers import TransformersBackend

    backend = TransformersBackend(model=model, adapter=adapter)
    try:
        srv = make_server(backend, host, port, model, api_key=api_key)
    except OSError as e:
        raise typer.BadParameter(f"cannot listen on {host}:{port} ({e.strerror or type(e).__name__}); choose another --port or --host",
                                 param_hint="--port") from None
    typer.echo(f"serving {model} on http://{host}:{port}/v1 (Ctrl-C to stop){'; API key required' if api_key else ''}")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
