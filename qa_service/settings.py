"""Service settings: the index and search settings plus what only the HTTP service needs.

Read from `QA_*` environment variables (e.g. `QA_ADMIN_TOKEN`, `QA_CORS_ORIGINS='["https://a.org"]'`).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from index.settings import Settings


class ServiceSettings(Settings):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    admin_token: SecretStr | None = Field(
        None, description="bearer token for the write and admin routes; unset turns them off"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser"
    )
    max_question_chars: int = Field(1000, ge=10)
    max_history_turns: int = Field(20, ge=0)
    max_body_bytes: int = Field(
        2_000_000, ge=1024, description="largest request body (JSON or uploaded article)"
    )
    ask_rate_per_minute: int = Field(
        120, ge=0, description="sustained /ask requests a minute per client address; 0 turns the limit off"
    )
    ask_burst: int = Field(30, ge=1, description="/ask requests a client may send at once before the rate applies")
    query_threads: int = Field(
        1, ge=1, description="threads torch, FAISS and ONNX Runtime use within one question"
    )
    reload_interval_s: float = Field(
        1.0, gt=0, description="how often the service checks for a newly published index version"
    )

    @field_validator("admin_token", mode="before")
    @classmethod
    def _empty_token_is_no_token(cls, value: object) -> object:
        # `QA_ADMIN_TOKEN=` (as docker-compose passes an unset variable) must not mean
        # "the empty string is the password".
        return None if isinstance(value, str) and not value.strip() else value
