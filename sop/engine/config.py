"""Settings of the SOP engine (SOP_* environment variables), with working defaults.

Read once per process, when its services are opened (the feature declares the class); code
asks its services for it: `services.config(SopConfig)`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SopConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOP_", env_file=".env", extra="ignore")

    tick_enabled: bool = True  # the per-minute tick job (tests drive the clock themselves)
    digest_at: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # local time of the guides' morning card
    digest_catch_up_minutes: int = Field(120, ge=1, le=720)  # a tick this late after digest_at still sends it
    digest_items: int = Field(3, ge=1, le=5)  # items with a button on the card
