"""A chat model behind any OpenAI-compatible endpoint (llama.cpp's server, Ollama, vLLM, a
hosted API), reached with the official `openai` client. Every way the call can fail becomes a
`GenerationError` whose message says what happened, for `generation_error`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai


class GenerationError(Exception):
    """The language model gave no usable answer; the message is shown to the client."""


class ChatModel:
    def __init__(
        self, base_url: str, model: str, api_key: str | None, timeout_s: float, max_tokens: int
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        # No retries: a reader is waiting, and the extractive answer is already there.
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=0
        )

    def stream(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> Iterator[str]:
        """The answer's text as it is written. Raises `GenerationError` on any failure, and when
        the whole answer takes longer than the timeout (the client's own timeout is per read)."""
        deadline = time.monotonic() + self.timeout_s
        try:
            events = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens or self.max_tokens,
                temperature=0, stream=True,
            )
            with events:
                for event in events:
                    if time.monotonic() > deadline:
                        raise GenerationError(self._too_slow())
                    delta = event.choices[0].delta.content if event.choices else None
                    if delta:
                        yield delta
        except GenerationError:
            raise
        except openai.APITimeoutError as exc:
            raise GenerationError(self._too_slow()) from exc
        except openai.APIConnectionError as exc:
            raise GenerationError(f"could not reach the language model at {self.base_url}") from exc
        except openai.APIStatusError as exc:
            detail = exc.body.get("message") if isinstance(exc.body, dict) else None
            raise GenerationError(
                f"the language model answered HTTP {exc.status_code}: {_short(str(detail or exc.message))}"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - a garbled stream from a server we do not own
            raise GenerationError(f"the language model's answer could not be read: {_short(str(exc))}") from exc

    def _too_slow(self) -> str:
        return f"the language model did not finish within {self.timeout_s:g} s"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
