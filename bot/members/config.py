"""Settings of the members feature (MEMBERS_* environment variables), with working defaults.

Read once per process, when its services are opened (the feature declares the class); code
asks its services for it: `services.config(MembersConfig)`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MembersConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEMBERS_", env_file=".env", extra="ignore")

    create_member_on_binding: bool = True
    welcome_template_code: str = "NEW_MEMBER_7D"  # created on first use when missing
    welcome_coupon_valid_days: int = Field(7, ge=1)
    welcome_coupon_value_fen: int = Field(1000, ge=0)
    welcome_coupon_min_spend_fen: int = Field(0, ge=0)

    points_per_yuan: int = Field(1, ge=0)
    join_bonus_points: int = Field(100, ge=0)
    referral_bonus_points: int = Field(200, ge=0)
    points_valid_days: int = Field(365, ge=1)
    expiring_soon_days: int = Field(30, ge=1)

    at_risk_days: int = Field(90, ge=1)
    dormant_days: int = Field(300, ge=1)

    chat_join_enabled: bool = True  # a non-member may join by writing 入会 in 微信客服
    # WeCom userid → store codes they manage (their guide lookups see the whole store).
    store_managers: dict[str, list[str]] = Field(default_factory=dict)
