"""Settings come from arguments > CORTEX_* environment > TOML file > defaults, and are frozen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cortex.config import Settings
from cortex.errors import ConfigError


def test_precedence_is_arguments_then_environment_then_file(tmp_path: Path) -> None:
    (tmp_path / "cortex.toml").write_text(
        "[cortex]\ntenant = 'from-file'\ncheckpoint_every = 10\nwrite_timeout = 2.5\n"
    )
    env = {"CORTEX_TENANT": "from-env", "CORTEX_CHECKPOINT_EVERY": "20"}
    assert Settings.load(tmp_path, environ={}).tenant == "from-file"
    assert Settings.load(tmp_path, environ=env).tenant == "from-env"
    assert Settings.load(tmp_path, environ=env).checkpoint_every == 20
    assert Settings.load(tmp_path, environ=env).write_timeout == 2.5
    assert Settings.load(tmp_path, environ=env, tenant="from-arg").tenant == "from-arg"


def test_home_comes_from_cortex_home_when_not_given(tmp_path: Path) -> None:
    assert Settings.load(environ={"CORTEX_HOME": str(tmp_path)}).home == tmp_path
    assert Settings.load(environ={}).home == Path("~/.cortex").expanduser()


def test_settings_are_immutable(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.tenant = "other"  # type: ignore[misc]
    assert settings.with_overrides(tenant="other").tenant == "other"
    assert settings.tenant == "default"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CORTEX_CHECKPOINT_EVERY": "many"}, "not a int"),
        ({"CORTEX_WRITE_QUEUE_SIZE": "0"}, "positive"),
        ({"CORTEX_WRITE_TIMEOUT": "-1"}, "write_timeout"),
    ],
)
def test_bad_environment_values_are_config_errors(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.load(tmp_path, environ=env)


def test_unknown_settings_in_the_file_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "cortex.toml").write_text("[cortex]\ncheckpoint_evry = 5\n")
    with pytest.raises(ConfigError, match="checkpoint_evry"):
        Settings.load(tmp_path, environ={})


def test_an_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path, config_file=tmp_path / "missing.toml", environ={})


def test_a_malformed_config_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "cortex.toml").write_text("[cortex\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        Settings.load(tmp_path, environ={})


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("1", True), ("Yes", True), ("false", False), ("0", False)]
)
def test_boolean_settings_read_from_the_environment(raw: str, value: bool) -> None:
    env = {"CORTEX_GATE_SELF_APPROVAL": raw}
    assert Settings.load("/tmp/x", environ=env).gate_self_approval is value


def test_a_boolean_setting_refuses_other_words() -> None:
    with pytest.raises(ConfigError, match="CORTEX_GATE_SELF_APPROVAL"):
        Settings.load("/tmp/x", environ={"CORTEX_GATE_SELF_APPROVAL": "maybe"})
    with pytest.raises(ConfigError, match="gate_self_approval"):
        Settings.load("/tmp/x", gate_self_approval="yes")
