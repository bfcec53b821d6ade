"""Configuration: typed, validated at load, problems named by key path, secrets from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings, parse_duration
from tests.ingest_helpers import cli


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_settings(text=text)
    return info.value.problems


@pytest.mark.parametrize(("text", "path", "message"), [
    ('sources:\n  - {name: a, type: folder, path: x}\n  - {name: b, type: feed, url: "not a url"}\n',
     "sources[1].url", "not a valid URL"),
    ("sources:\n  - {name: a, type: folder}\n", "sources[0].path", "required key is missing"),
    ("bogus: 1\n", "bogus", "unknown key"),
    ("sources:\n  - {name: a, type: folder, path: x, colour: red}\n", "sources[0].colour", "unknown key"),
    ("timezone: Mars/Base\n", "timezone", "unknown time zone"),
    ("sources:\n  - {name: a, type: ftp, path: x}\n", "sources[0]", "unknown source type"),
    ("sources:\n  - {name: a, path: x}\n", "sources[0]", "'type' is missing"),
    ("sources:\n  - {name: a, type: folder, path: x, interval: soon}\n", "sources[0].interval", "duration"),
    ("sources:\n  - {name: a, type: folder, path: x, timezone: Nowhere}\n", "sources[0].timezone",
     "time zone"),
    ("sources:\n  - {name: a, type: folder, path: x, max_file_bytes: 0}\n", "sources[0].max_file_bytes",
     "greater than 0"),
    ("sources:\n  - {name: a, type: folder, path: x}\n  - {name: a, type: folder, path: y}\n", "sources",
     "used twice"),
    ('digest: {times: ["25:00"]}\n', "digest.times", "not a time of day"),
    ('database: {url: "mysql://x"}\n', "database.url", "sqlite"),
    ("adapters:\n  nope: {}\n", "adapters.nope", "unknown adapter"),
])
def test_bad_keys_and_values_name_their_path(text: str, path: str, message: str) -> None:
    problems = _problems(text)
    assert any(p == path and message in m for p, m in problems), problems


def test_invalid_yaml_and_non_mapping() -> None:
    [(path, msg)] = _problems("sources: [\n")
    assert path == "" and "invalid YAML" in msg and "line 2" in msg
    assert "mapping" in _problems("- a\n")[0][1]


def test_secrets_only_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = _problems('adapters:\n  telegram: {token: "123456:ABCDEF"}\n')
    assert problems[0][0] == "adapters.telegram.token" and "environment" in problems[0][1]
    assert "123456:ABCDEF" not in str(problems)  # the secret itself is never echoed
    monkeypatch.delenv("DIGESTBOT_TEST_TOKEN", raising=False)
    problems = _problems('adapters:\n  telegram: {token: "${DIGESTBOT_TEST_TOKEN}"}\n')
    assert problems[0] == ("adapters.telegram.token", "environment variable DIGESTBOT_TEST_TOKEN is not set")
    monkeypatch.setenv("DIGESTBOT_TEST_TOKEN", "123456:ABCDEF")
    s = load_settings(text='adapters:\n  telegram: {token: "${DIGESTBOT_TEST_TOKEN}"}\n')
    cfg = s.adapter_configs["telegram"]
    assert cfg.token.get_secret_value() == "123456:ABCDEF"  # type: ignore[attr-defined]
    assert "123456:ABCDEF" not in repr(cfg) and "123456:ABCDEF" not in str(s)


def test_env_interpolation_with_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIGESTBOT_TEST_DIR", str(tmp_path))
    monkeypatch.delenv("DIGESTBOT_TEST_TZ", raising=False)
    s = load_settings(text="timezone: ${DIGESTBOT_TEST_TZ:-Europe/Berlin}\n"
                           "sources:\n  - {name: a, type: folder, path: '${DIGESTBOT_TEST_DIR}/arts'}\n")
    assert s.timezone == "Europe/Berlin"
    assert str(s.sources[0].path) == f"{tmp_path}/arts"  # type: ignore[union-attr]
    monkeypatch.setenv("DIGESTBOT_TEST_TZ", "UTC")
    assert load_settings(text="timezone: ${DIGESTBOT_TEST_TZ:-Europe/Berlin}\n").timezone == "UTC"
    assert load_settings(text="timezone: ${DIGESTBOT_TEST_UNSET_X:-}Asia/Tokyo\n").timezone == "Asia/Tokyo"


def test_defaults_and_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here
    s = load_settings()
    assert s.origin == "embedded default" and s.timezone == "Asia/Shanghai"
    assert [(x.name, x.type) for x in s.sources] == [("examples", "folder")]
    assert "console" in s.adapter_configs
    f = load_settings(text="sources:\n  - {name: a, type: folder, path: x}\n").sources[0]
    assert f.interval == 60 and f.max_file_bytes == 2_000_000 and f.settle_seconds == 2  # type: ignore[union-attr]
    assert parse_duration("15m") == 900 and parse_duration("90s") == 90 and parse_duration(2) == 2


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "sub" / "config.yaml"
    cfg.parent.mkdir()
    cfg.write_text("sources:\n  - {name: a, type: folder, path: arts}\n", encoding="utf-8")
    s = load_settings(cfg)
    assert s.resolve_path(s.sources[0].path) == tmp_path / "sub" / "arts"  # type: ignore[union-attr]


def test_check_command_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("sources:\n  - {name: a, type: folder, path: x}\n", encoding="utf-8")
    res = cli("check", "--config", str(good))
    assert res.returncode == 0 and "configuration OK" in res.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text('sources:\n  - {name: a, type: folder, path: x}\n  - {name: b, type: feed, url: "nope"}\n'
                   "adapters:\n  telegram: {token: plain-secret}\n", encoding="utf-8")
    res = cli("--config", str(bad), "check")
    assert res.returncode == 2
    assert "sources[1].url: not a valid URL" in res.stderr
    assert "adapters.telegram.token" in res.stderr and "plain-secret" not in res.stderr + res.stdout
    res = cli("--config", str(bad), "check", "--json")
    assert res.returncode == 2
    errors = json.loads(res.stdout)["errors"]
    assert {"path": "sources[1].url", "message": "not a valid URL"} in errors
    res = cli("--config", str(tmp_path / "missing.yaml"), "check")
    assert res.returncode == 2 and "not found" in res.stderr


EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"


def test_config_example_documents_the_defaults() -> None:
    example = load_settings(EXAMPLE)
    defaults = load_settings(text="sources:\n  - {name: examples, type: folder, path: examples/articles}\n")
    for section in ("database", "stories", "digest", "delivery", "commands", "server", "logging"):
        assert getattr(example, section).model_dump() == getattr(defaults, section).model_dump(), section
    assert example.sources[0].model_dump() == defaults.sources[0].model_dump()
    assert example.timezone == defaults.timezone


def test_config_example_commented_blocks_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    for var in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
                "SLACK_SIGNING_SECRET"):
        monkeypatch.setenv(var, "x-test-secret")
    key_line = re.compile(r"^  #( {1,3}|\s?- )(?=[a-z_]+:(\s|$))")

    def uncomment(m: re.Match[str]) -> str:
        return "  " + m.group(1)[1:] if m.group(1).startswith(" ") else "  - "

    text = "\n".join(key_line.sub(uncomment, ln) for ln in EXAMPLE.read_text(encoding="utf-8").splitlines())
    s = load_settings(text=text)
    assert [x.type for x in s.sources] == ["folder", "feed"]
    assert {"console", "telegram", "slack"} <= set(s.adapter_configs)


def test_a_literal_secret_names_its_own_variable() -> None:
    [(path, msg)] = _problems('adapters: {slack: {bot_token: "${B:-x}", app_token: "${A:-y}", '
                              'signing_secret: "s3cret"}}')
    assert path == "adapters.slack.signing_secret"
    assert "${SLACK_SIGNING_SECRET}" in msg and "TELEGRAM" not in msg
    [(path, msg)] = _problems('adapters: {telegram: {token: "123:abc"}}')
    assert "${TELEGRAM_BOT_TOKEN}" in msg
