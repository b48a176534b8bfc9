"""Backend for any OpenAI-compatible completions server (vLLM, TGI, llama.cpp server, ``medsynth serve``).

Only the URL you configure is contacted. Prompt text is never logged.
"""

from __future__ import annotations

import time
from typing import Any

from ...exceptions import ModelNotAvailableError
from ...registry import BACKENDS
from .base import Backend, Completion, GenParams

__all__ = ["OpenAIBackend"]


@BACKENDS.register("openai")
class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, model: str | None = None, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None,
                 timeout: float = 120.0, retries: int = 3, **_: Any):
        import httpx

        self.base_url = base_url.rstrip("/")
        self._model = model or "default"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers, trust_env=False)
        self.retries = retries

    @property
    def model_id(self) -> str:
        return f"{self._model}@{self.base_url}"

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        delay = 0.5
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                r = self._client.post(path, json=payload)
                if r.status_code >= 500 or r.status_code == 429:
                    raise httpx.HTTPStatusError(f"server answered {r.status_code}", request=r.request, response=r)
                if r.status_code >= 400:
                    raise ModelNotAvailableError(f"{self.base_url}{path} answered HTTP {r.status_code}. Check the model name ('{self._model}') and the server's API.")
                return r.json()
            except (httpx.TransportError, httpx.HTTPStatusError) as e:
                last = e
                if attempt < self.retries:
                    time.sleep(delay)
                    delay *= 2
        raise ModelNotAvailableError(f"Cannot reach the OpenAI-compatible server at {self.base_url} after {self.retries + 1} attempts "
                                     f"({type(last).__name__}). Start the server (e.g. `medsynth serve`) or fix `base_url`.")

    def generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        out: list[Completion] = []
        for b0 in range(0, len(prompts), params.batch_size):
            batch = prompts[b0 : b0 + params.batch_size]
            payload: dict[str, Any] = {"model": self._model, "prompt": batch, "max_tokens": params.max_new_tokens,
                                       "temperature": params.temperature, "seed": params.seed + b0}
            if params.top_p is not None:
                payload["top_p"] = params.top_p
            if params.top_k is not None:
                payload["top_k"] = params.top_k
            if params.stop:
                payload["stop"] = params.stop
            data = self._post("/completions", payload)
            choices = sorted(data.get("choices", []), key=lambda c: c.get("index", 0))
            usage = data.get("usage", {})
            if len(choices) != len(batch):
                raise ModelNotAvailableError(f"{self.base_url} returned {len(choices)} choices for {len(batch)} prompts; the server does not support batched prompts.")
            per_prompt = usage.get("prompt_tokens", 0) // max(len(batch), 1)
            for c in choices:
                text = c.get("text", "")
                for s in params.stop:
                    k = text.find(s)
                    if k >= 0:
                        text = text[:k]
                ct = c.get("completion_tokens") or max(1, len(text) // 4)
                out.append(Completion(text, per_prompt, ct, c.get("finish_reason") or "stop", {}))
        return out

    def close(self) -> None:
        self._client.close()
