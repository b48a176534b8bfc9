import threading

import httpx

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
