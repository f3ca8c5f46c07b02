"""Settings of outreach (OUTREACH_* environment variables), with working defaults.

Read once per process, when its services are opened (the feature declares the class); code
asks its services for it: `services.config(OutreachConfig)`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OutreachConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTREACH_", env_file=".env", extra="ignore")

    # WeCom lets the admin cap company group sends per customer at "as many a month as the month
    # has days", 7 a week or 1 a day (wecom-protocol.md); 1 a day and 7 a week fit all three.
    # Windows are rolling (24 h, 7 × 24 h): stricter than calendar days, never over WeCom's cap.
    cap_per_day: int = Field(1, ge=1)
    cap_per_week: int = Field(7, ge=1)
    chunk_size: int = Field(10_000, ge=1, le=10_000)  # add_msg_template takes ≤ 10,000 customers
    sends_per_job: int = Field(50, ge=1, le=1000)  # WeCom tasks one fan-out job creates (fewer commits)
    coupons_per_transaction: int = Field(200, ge=1)
    sync_delay_seconds: float = Field(300.0, gt=0)  # first result sync after the tasks exist
    sync_max_delay_seconds: float = Field(6 * 3600.0, gt=0)  # back-off while nothing changes
    finish_after_idle_days: float = Field(30.0, gt=0)  # unconfirmed tasks this long: finished
    reconcile_window_seconds: int = Field(600, ge=60)  # how far back to look for a lost task
