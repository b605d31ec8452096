"""The web app's settings, read once from the environment (SANJIN_WEB_*)."""

from __future__ import annotations

import ipaddress
import secrets
from datetime import timedelta

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.signin.state import ThrottlePolicy


class WebSettings(BaseSettings):
    """`secret_key` signs the session cookie; without one a random key is made, so sessions end at restart."""

    model_config = SettingsConfigDict(env_prefix="SANJIN_WEB_", extra="ignore", hide_input_in_errors=True)

    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    session_minutes: int = Field(default=8 * 60, ge=1)  # a working day; then sign in again
    # The cookie goes only over HTTPS. Unset: on by default for any address but loopback (ASVS V3.4.1), where a
    # developer's plain-HTTP test server would otherwise never keep anyone signed in.
    https_only: bool | None = None
    lockout_failures: int = Field(default=10, ge=3, le=100)  # consecutive failures that lock an account
    address_failures: int = Field(default=30, ge=5, le=10_000)  # failures per address per window that block it
    address_window_minutes: int = Field(default=15, ge=1)
    address_block_minutes: int = Field(default=15, ge=1)

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: str) -> str:
        # The message never repeats the value (hide_input_in_errors too): a short key must not end up in a log.
        if len(value) < 16:
            raise ValueError(f"SANJIN_WEB_SECRET_KEY 至少 16 个字符（现为 {len(value)} 个） / "
                             f"SANJIN_WEB_SECRET_KEY needs at least 16 characters ({len(value)} given)")
        return value

    def secure_cookie(self, host: str) -> bool:
        return self.https_only if self.https_only is not None else not is_loopback(host)

    def throttle(self) -> ThrottlePolicy:
        return ThrottlePolicy(account_failures=self.lockout_failures, address_failures=self.address_failures,
                              address_window=timedelta(minutes=self.address_window_minutes),
                              address_block=timedelta(minutes=self.address_block_minutes))


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
