"""The web app's settings, read once from the environment (SANJIN_WEB_*)."""

from __future__ import annotations

import secrets

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    """`secret_key` signs the session cookie; without one a random key is made, so sessions end at restart."""

    model_config = SettingsConfigDict(env_prefix="SANJIN_WEB_", extra="ignore")

    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32), min_length=16)
    session_minutes: int = Field(default=8 * 60, ge=1)  # a working day; then sign in again
    https_only: bool = False  # set true behind TLS so the cookie is never sent in clear
