"""Typed settings: YAML plus ${ENV} interpolation, validated at load.

Every problem is reported as ``key.path[index]: message`` so a user can find it.
Secrets may only come from the environment (``${VAR}``), never from the file.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
)

from bot.adapters.base import AdapterConfig, registry
from bot.i18n.format import ZONE_HINT, known_zone
from bot.store.db import normalise_db_url
from bot.text.redact import url_password

DEFAULT_DB_URL = "sqlite:///digestbot.db"
DEFAULT_TZ = "Asia/Shanghai"
# Keys whose values are secrets: the file must say ${VAR}, never the value itself.
SECRET_KEYS = frozenset({"token", "bot_token", "app_token", "signing_secret", "webhook_secret", "password"})

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class ConfigError(Exception):
    """Configuration is invalid; ``problems`` are ``(path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in problems))


def parse_duration(value: Any) -> float:
    """'15m' / '90s' / '2h' / 30 -> seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 2h)")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


Duration = Annotated[float, Field(description="seconds; accepts 90s, 15m, 2h")]


def _check_tz(value: str | None) -> str | None:
    if value is not None and not known_zone(value):
        raise ValueError(f"unknown time zone {value!r} ({ZONE_HINT})")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class DatabaseConfig(Strict):
    url: str = ""  # empty: DATABASE_URL, else sqlite:///digestbot.db
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not re.match(r"^(sqlite|postgres|postgresql)(\+\w+)?://", v):
            raise ValueError("must be sqlite:///FILE or postgresql://USER@HOST/DB")
        return v

    def resolved_url(self) -> str:
        return normalise_db_url(self.url or os.environ.get("DATABASE_URL") or DEFAULT_DB_URL)


class _SourceBase(Strict):
    name: str = Field(min_length=1)
    interval: float = 900.0
    timezone: str | None = None  # naive dates; default: the top-level timezone
    outlet: str | None = None  # overrides what the articles say
    enabled: bool = True

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, v: Any) -> float:
        return parse_duration(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return _check_tz(v)


class FolderSourceConfig(_SourceBase):
    type: Literal["folder"]
    path: Path
    interval: float = 60.0
    max_file_bytes: int = Field(default=2_000_000, gt=0)
    pattern: str = "**/*.md"
    # A broken file modified this recently may still be being written: retry it next pass.
    settle_seconds: float = Field(default=2.0, ge=0)


class FeedSourceConfig(_SourceBase):
    type: Literal["feed"]
    url: HttpUrl
    timeout: float = 20.0
    max_bytes: int = Field(default=5_000_000, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    allow_private_addresses: bool = False
    user_agent: str | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float:
        return parse_duration(v)


SourceConfig = Annotated[FolderSourceConfig | FeedSourceConfig, Field(discriminator="type")]


class StoriesConfig(Strict):
    window_hours: float = Field(default=96.0, gt=0)
    similarity: float = Field(default=0.0, ge=0, le=1)  # 0: the engine's tuned default
    duplicate_threshold: float = Field(default=0.0, ge=0, le=1)  # 0: the engine's tuned default


class DigestConfig(Strict):
    max_stories: int = Field(default=10, ge=1, le=50)
    times: list[str] = Field(default_factory=lambda: ["08:00"])
    locale: Literal["zh-CN", "en"] = "zh-CN"
    lookback_hours: float = Field(default=24.0, gt=0)  # first digest of a new subscription
    updates: bool = False  # mention a delivered story again when it grew a lot
    update_growth: int = Field(default=3, ge=1)
    summary_width: int = Field(default=120, ge=20)
    # After downtime: one catch-up digest at start if a scheduled time was missed this recently.
    catch_up_hours: float = Field(default=6.0, ge=0)

    @field_validator("times")
    @classmethod
    def _times(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t):
                raise ValueError(f"not a time of day: {t!r} (use HH:MM)")
        return v


class DeliveryConfig(Strict):
    max_attempts: int = Field(default=8, ge=1)
    backoff_base: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=300.0, gt=0)


class CommandsConfig(Strict):
    per_user_per_minute: int = Field(default=10, ge=1)
    max_query_chars: int = Field(default=200, ge=10)
    search_page_size: int = Field(default=5, ge=1, le=20)


class ServerConfig(Strict):
    """Health and metrics endpoint; port 0 turns it off."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)


class LoggingConfig(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = False


class Settings(Strict):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    timezone: str = DEFAULT_TZ
    sources: list[SourceConfig] = Field(default_factory=list)
    adapters: dict[str, Any] = Field(default_factory=lambda: {"console": {}})
    stories: StoriesConfig = Field(default_factory=StoriesConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    commands: CommandsConfig = Field(default_factory=CommandsConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    # Where this configuration came from; relative paths resolve against its folder.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    origin: str = Field(default="embedded default", exclude=True)
    # Every secret value this configuration resolved (tokens, signing secrets, URL passwords):
    # masked in logs and output (bot.text.redact).
    secrets: list[str] = Field(default_factory=list, exclude=True, repr=False)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _check_tz(v) or DEFAULT_TZ

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for s in v:
            if s.name in seen:
                raise ValueError(f"source name {s.name!r} is used twice")
            seen.add(s.name)
        return v

    # Adapter sections are typed by each adapter's own model (see adapters.base).
    adapter_configs: dict[str, AdapterConfig] = Field(default_factory=dict, exclude=True)

    def source_timezone(self, source: FolderSourceConfig | FeedSourceConfig) -> str:
        return source.timezone or self.timezone

    def resolve_path(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.base_dir / p)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("folder", "feed", "function-after", "function-before") or str(part).startswith(
            ("function-", "lax-", "json-")
        ):
            # discriminator / validator tags pydantic puts into the location
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


_FRIENDLY = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "url_parsing": "not a valid URL",
    "url_scheme": "not a valid URL (use http:// or https://)",
    "union_tag_invalid": "unknown source type (use folder or feed)",
    "union_tag_not_found": "'type' is missing (folder or feed)",
}


def _problems(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        path = _format_loc(tuple(err["loc"]))
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        msg = _FRIENDLY.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
        out.append((path, msg))
    return out


def interpolate(value: Any, path: str = "", problems: list[tuple[str, str]] | None = None) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string, recursively."""
    problems = problems if problems is not None else []
    if isinstance(value, dict):
        return {k: interpolate(v, f"{path}.{k}" if path else str(k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append((path, f"environment variable {name} is not set"))
            return ""

        return _ENV_RE.sub(sub, value)
    return value


def env_name(path: str) -> str:
    """The environment variable a secret at ``path`` would conventionally come from:
    adapters.slack.signing_secret -> SLACK_SIGNING_SECRET, adapters.telegram.token ->
    TELEGRAM_BOT_TOKEN (a bot's token), database.password -> DATABASE_PASSWORD."""
    parts = [p for p in re.split(r"[.\[\]]+", path) if p and not p.isdigit()]
    if parts and parts[0] == "adapters":
        parts = parts[1:]
    if parts and parts[-1] == "token":
        parts[-1] = "bot_token"
    return "_".join(parts[-2:]).upper()


def _check_secrets(raw: Any, path: str, problems: list[tuple[str, str]]) -> None:
    if isinstance(raw, dict):
        for k, v in raw.items():
            p = f"{path}.{k}" if path else str(k)
            if k in SECRET_KEYS and isinstance(v, str) and v and not _ENV_RE.fullmatch(v.strip()):
                problems.append((p, f"secrets must come from the environment, e.g. ${{{env_name(p)}}}"))
            else:
                _check_secrets(v, p, problems)
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            _check_secrets(v, f"{path}[{i}]", problems)


def load_settings(path: str | os.PathLike[str] | None = None, *, text: str | None = None) -> Settings:
    """Load and validate; ``path=None`` means ./config.yaml if present, else the embedded default."""
    origin = "embedded default"
    base_dir = Path.cwd()
    if text is None:
        if path is None:
            candidate = Path("config.yaml")
            if candidate.is_file():
                path = candidate
        if path is not None:
            p = Path(path)
            try:
                text = p.read_text(encoding="utf-8-sig")
            except FileNotFoundError:
                raise ConfigError([("", f"config file not found: {p}")]) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError([("", f"cannot read config file {p}: {exc}")]) from None
            origin = str(p)
            base_dir = p.resolve().parent
    if text is None:
        raw: Any = embedded_default()
    else:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            raise ConfigError([("", f"invalid YAML: {where}{getattr(exc, 'problem', exc)}")]) from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError([("", "the configuration must be a mapping of keys")])
    problems: list[tuple[str, str]] = []
    _check_secrets(raw, "", problems)
    data = interpolate(raw, "", problems)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems + _problems(exc)) from None
    settings.base_dir = base_dir
    settings.origin = origin
    settings.secrets = secret_values(data)
    problems.extend(_validate_adapters(settings))
    if problems:
        raise ConfigError(problems)
    return settings


def secret_values(data: Any) -> list[str]:
    """The secrets in interpolated config data: values of secret keys, and passwords in URLs
    (including ``DATABASE_URL``, which the database section may defer to)."""
    found: list[str] = []

    def walk(value: Any, key: str | None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, None)
        elif isinstance(value, str) and value:
            if key in SECRET_KEYS:
                found.append(value)
            elif "@" in value and "://" in value:
                password = url_password(value)
                if password:
                    found.append(password)

    walk(data, None)
    walk(os.environ.get("DATABASE_URL", ""), None)
    return sorted(set(found))


def embedded_default() -> dict[str, Any]:
    return {
        "database": {"url": ""},
        "timezone": DEFAULT_TZ,
        "sources": [{"name": "examples", "type": "folder", "path": "examples/articles"}],
        "adapters": {"console": {}},
    }


def _validate_adapters(settings: Settings) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    reg = registry()
    for name, section in settings.adapters.items():
        path = f"adapters.{name}"
        factory = reg.get(name)
        if factory is None:
            problems.append((path, f"unknown adapter (known: {', '.join(sorted(reg))})"))
            continue
        try:
            settings.adapter_configs[name] = factory.config_model.model_validate(section or {})
        except ValidationError as exc:
            problems.extend(_problems(exc, path))
    # The typed sections hold the secrets (as SecretStr); the raw copy must not show them in a repr or log.
    settings.adapters = _redact(settings.adapters)
    return problems


def _redact(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: "**********" if k in SECRET_KEYS and v else _redact(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_redact(v) for v in raw]
    return raw
