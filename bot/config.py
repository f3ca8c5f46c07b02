"""Settings from the environment (and an optional `.env`), validated once at start-up."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REAL_WECOM_API = "https://qyapi.weixin.qq.com/cgi-bin/"

# Credentials of the built-in emulator corp, used only when no WeCom credentials are configured.
EMULATOR_CORP_ID = "wwemulator0000001"
EMULATOR_AGENT_ID = 1000002
EMULATOR_SECRET = "emulator-app-secret"
EMULATOR_TOKEN = "emulatortoken"
EMULATOR_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


DEFAULT_TIMEZONE = "Asia/Shanghai"  # TIMEZONE's default: the one place it is written
_corp_zone: ZoneInfo = ZoneInfo(DEFAULT_TIMEZONE)


def use_timezone(name: str) -> None:
    """Make TIMEZONE this process's corp zone (open_services does, from its settings)."""
    global _corp_zone
    _corp_zone = ZoneInfo(name)


def corp_zone() -> ZoneInfo:
    """The corp's time zone (TIMEZONE): dates in messages, days in statistics."""
    return _corp_zone


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    wecom_corp_id: str = ""
    wecom_agent_id: int = 0
    wecom_secret: str = ""
    wecom_contact_secret: str = ""  # optional separate 客户联系 secret
    wecom_kf_secret: str = ""  # optional separate 微信客服 secret
    wecom_token: str = ""
    wecom_encoding_aes_key: str = ""
    wecom_api_base_url: str = REAL_WECOM_API
    wecom_callback_max_skew_seconds: int = Field(600, ge=0)
    wecom_api_calls_per_minute: int = Field(10000, ge=1)  # WeCom: 10,000 per API per minute
    wecom_group_send_cap_per_month: int = Field(4, ge=1)

    database_url: str = "sqlite+aiosqlite:///./wecom-assistant.db"
    redis_url: str | None = None
    redis_key_prefix: str = "wa:"  # several deployments (or test runs) can share one Redis

    host: str = "0.0.0.0"
    port: int = Field(8080, ge=1, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    brand_name: str = Field("", max_length=30)  # shown on the customer's landing page
    emulator_port: int = Field(8090, ge=0, le=65535)  # the built-in emulator; 0 = any free port
    callback_max_body_bytes: int = Field(64 * 1024, ge=1024)
    # An inbox write slower than this (or failing on the database) goes to the local spool; WeCom
    # waits 5 s in all, and the spool's own fsync must fit in what is left.
    callback_inbox_timeout_seconds: float = Field(2.0, gt=0, le=4)
    callback_spool_path: str = ""  # empty: beside the SQLite database, else a temp dir per DB and port
    log_level: str = "INFO"

    job_lease_seconds: float = Field(60.0, gt=0)
    job_poll_seconds: float = Field(0.5, gt=0)
    job_max_attempts: int = Field(6, ge=1)
    job_concurrency: int = Field(16, ge=1)
    job_retention_days: float = Field(7.0, gt=0)  # done and expired jobs; dead letters are kept
    inbox_retention_days: float = Field(30.0, gt=0)  # handled and ignored callbacks
    retention_batch_rows: int = Field(5000, ge=1)
    timezone: str = DEFAULT_TIMEZONE  # the corp's: cron specs, opening hours, dates in messages

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        if value.upper() not in levels:
            raise ValueError(f"must be one of {', '.join(levels)}")
        return value.upper()

    @field_validator("public_base_url")
    @classmethod
    def _public_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or not urlsplit(value).hostname:
            raise ValueError("must be an http(s) URL such as https://guide.example.com")
        return value.rstrip("/")

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_is_none(cls, value):
        return value or None

    @field_validator("wecom_api_base_url")
    @classmethod
    def _base_url_ends_with_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("wecom_encoding_aes_key")
    @classmethod
    def _aes_key_is_43_base64_chars(cls, value: str) -> str:
        if not value:
            return value
        if len(value) != 43:
            raise ValueError("must be the 43-character EncodingAESKey from the WeCom console")
        try:
            if len(base64.b64decode(value + "=", validate=True)) != 32:
                raise ValueError
        except (binascii.Error, ValueError):
            raise ValueError("is not valid base64 for a 32-byte key") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must be a postgresql:// or sqlite:/// URL")
        return value

    @model_validator(mode="after")
    def _credentials_all_or_none(self):
        required = {
            "WECOM_CORP_ID": self.wecom_corp_id,
            "WECOM_SECRET": self.wecom_secret,
            "WECOM_TOKEN": self.wecom_token,
            "WECOM_ENCODING_AES_KEY": self.wecom_encoding_aes_key,
        }
        given = [name for name, value in required.items() if value]
        if given and len(given) != len(required):
            missing = ", ".join(name for name, value in required.items() if not value)
            raise ValueError(f"{missing} must be set together with {', '.join(given)}")
        if given and not self.wecom_agent_id:
            raise ValueError("WECOM_AGENT_ID must be set when WeCom credentials are configured")
        return self

    @property
    def uses_emulator(self) -> bool:
        """No WeCom credentials: run against the built-in emulator."""
        return not self.wecom_corp_id

    @property
    def embedded_emulator_api_url(self) -> str:
        """Where `serve` runs the built-in emulator (a worker of the same config calls it there)."""
        return f"http://127.0.0.1:{self.emulator_port}/cgi-bin/"

    def with_emulator_credentials(self, api_base_url: str) -> Settings:
        return self.model_copy(
            update={
                "wecom_corp_id": EMULATOR_CORP_ID,
                "wecom_agent_id": EMULATOR_AGENT_ID,
                "wecom_secret": EMULATOR_SECRET,
                "wecom_token": EMULATOR_TOKEN,
                "wecom_encoding_aes_key": EMULATOR_AES_KEY,
                "wecom_api_base_url": api_base_url,
            }
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def public_base_url_is_loopback(settings: Settings) -> bool:
    """PUBLIC_BASE_URL names this machine only: a customer's phone could not open its QR pages."""
    host = urlsplit(settings.public_base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def warn_about_risky_settings(settings: Settings, log: logging.Logger) -> None:
    """Settings that start fine but break something for real users."""
    if not settings.uses_emulator and public_base_url_is_loopback(settings):
        log.warning("PUBLIC_BASE_URL is %s while real WeCom credentials are set: customers cannot "
                    "open QR landing pages there; set it to the service's public https URL",
                    settings.public_base_url)


def load_settings(**overrides) -> Settings:
    """Read settings; raise ConfigError naming the variable that is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            name = field.upper() if field != "settings" else "configuration"
            problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError("; ".join(problems)) from None
