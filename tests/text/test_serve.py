import contextlib
import json
import threading

import httpx
import pytest

from medsynth.text.backends.base import GenParams
from medsynth.text.backends.openai_http import OpenAIBackend
from medsynth.text.backends.transformers import TransformersBackend
from medsynth.text.serve import make_server


def test_openai_backend_against_real_local_server(tiny_lm):
    model, tok = tiny_lm
    local = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok)
    srv = make_server(local, "127.0.0.1", 0, "tiny")
    port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{port}/v1"
        assert httpx.get(url + "/models").json()["data"][0]["id"] == "tiny"
        remote = OpenAIBackend(model="tiny", base_url=url)
        p = GenParams(max_new_tokens=10, temperature=0.0, seed=0, batch_size=2)
        prompts = ["FINDINGS: The heart", "IMPRESSION:", "FINDINGS:"]
        got = remote.generate(prompts, p)
        want = local.generate(prompts, p)
        assert [c.text for c in got] == [c.text for c in want]
        assert all(c.completion_tokens > 0 for c in got)
        chat = httpx.post(url + "/chat/completions", json={"messages": [{"role": "user", "content": "FINDINGS:"}], "max_tokens": 5}).json()
        assert chat["choices"][0]["message"]["role"] == "assistant"
        assert httpx.post(url + "/completions", content=b"not json").status_code == 400
    finally:
        srv.shutdown()
        srv.server_close()


# -- hostile and OpenAI-shaped requests (issue 17) ------------------------------------------------------------------

@contextlib.contextmanager
def _serving(tiny_lm, api_key=None):
    model, tok = tiny_lm
    srv = make_server(TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok), "127.0.0.1", 0, "tiny", api_key=api_key)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()


def test_wrong_shapes_get_a_json_error_not_a_dropped_connection(tiny_lm):
    with _serving(tiny_lm) as url:
        cases = [("/chat/completions", {"messages": "hello"}, 422), ("/chat/completions", [1, 2, 3], 422), ("/completions", {"prompt": 5}, 422),
                 ("/completions", {"prompt": "x", "max_tokens": -1}, 422), ("/completions", {"prompt": "x", "n": 0}, 422),
                 ("/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, 422), ("/chat/completions", {"messages": []}, 422),
                 ("/completions", None, 422), ("/completions", {"prompt": "x", "model": "gpt-4"}, 404), ("/nowhere", {}, 404)]
        for path, body, code in cases:
            r = httpx.post(url + path, json=body, timeout=60)
            assert r.status_code == code, (path, body, r.status_code)
            err = r.json()["error"]
            assert err["message"] and err["code"] == code
        r = httpx.post(url + "/completions", content=b"\xff\xfe", timeout=60)
        assert r.status_code == 400
        import socket

        host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as sock:  # a client announcing a 1 GB body
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{}")
            assert sock.recv(4096).startswith(b"HTTP/1.0 413")
        assert httpx.get(url + "/models", timeout=60).status_code == 200  # still serving


def test_n_choices_and_sse_streaming(tiny_lm):
    with _serving(tiny_lm) as url:
        r = httpx.post(url + "/completions", json={"prompt": "FINDINGS:", "n": 3, "max_tokens": 4, "temperature": 1.0}, timeout=60).json()
        assert [c["index"] for c in r["choices"]] == [0, 1, 2]
        chat = httpx.post(url + "/chat/completions", json={"messages": [{"role": "user", "content": "FINDINGS:"}], "n": 2, "max_tokens": 4}, timeout=60).json()
        assert len(chat["choices"]) == 2 and chat["object"] == "chat.completion"
        with httpx.stream("POST", url + "/chat/completions", json={"messages": [{"role": "user", "content": "FINDINGS:"}], "max_tokens": 4, "stream": True},
                          timeout=60) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            events = [ln[len("data: "):] for ln in s.iter_lines() if ln.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        plain = httpx.post(url + "/chat/completions", json={"messages": [{"role": "user", "content": "FINDINGS:"}], "max_tokens": 4}, timeout=60).json()
        assert text == plain["choices"][0]["message"]["content"]  # same seed, same completion, streamed or not


def test_chat_uses_the_models_chat_template(tiny_lm):
    from medsynth.text.serve import ChatMessage, _chat_prompt

    model, tok = tiny_lm
    backend = TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok)
    msgs = [ChatMessage(role="system", content="S"), ChatMessage(role="user", content="U")]
    old = getattr(tok, "chat_template", None)
    try:
        tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
        assert _chat_prompt(backend, msgs) == "<system>S</system><user>U</user><assistant>"
        with _serving(tiny_lm) as url:
            r = httpx.post(url + "/chat/completions", json={"messages": [{"role": "user", "content": "U"}], "max_tokens": 2}, timeout=60).json()
        assert r["usage"]["prompt_tokens"] == backend.count_tokens("<user>U</user><assistant>")
    finally:
        tok.chat_template = old
    assert _chat_prompt(backend, msgs) == "system: S\nuser: U\nassistant:"  # no template: role-tagged lines


def test_bearer_token(tiny_lm):
    with _serving(tiny_lm, api_key="s3cret") as url:
        assert httpx.get(url + "/models", timeout=60).status_code == 401
        assert httpx.post(url + "/completions", json={"prompt": "x"}, headers={"Authorization": "Bearer nope"}, timeout=60).status_code == 401
        ok = httpx.post(url + "/completions", json={"prompt": "x", "max_tokens": 2}, headers={"Authorization": "Bearer s3cret"}, timeout=60)
        assert ok.status_code == 200
        assert httpx.get(url.removesuffix("/v1") + "/health", timeout=60).status_code == 200
        remote = OpenAIBackend(model="tiny", base_url=url, api_key="s3cret")
        assert remote.generate(["FINDINGS:"], GenParams(max_new_tokens=3, temperature=0.0))[0].completion_tokens > 0


def test_binding_beyond_localhost_needs_a_key(tiny_lm):
    model, tok = tiny_lm
    with pytest.raises(ValueError, match="API key"):
        make_server(TransformersBackend(model="tiny", model_obj=model, tokenizer_obj=tok), "0.0.0.0", 0, "tiny")
    from tests.hardening.harness import run_cli

    r = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert r.code == 2 and "--api-key" in r.text
