"""Settings: one frozen object built from arguments, `CORTEX_*` environment variables and TOML.

Precedence, highest first: explicit arguments, environment, the TOML file
(`--config`/`CORTEX_CONFIG`, else `<home>/cortex.toml` when present), defaults. There is no
module-level settings object: build one with `Settings.load(...)` and pass it explicitly.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from cortex.errors import ConfigError
from cortex.model import check_name

__all__ = ["DEFAULT_HOME", "Settings"]

DEFAULT_HOME = Path("~/.cortex")
CONFIG_FILE_NAME = "cortex.toml"
DATABASE_FILE_NAME = "cortex.db"


@dataclass(frozen=True, slots=True)
class Settings:
    """Immutable configuration of one CORTEX engine."""

    home: Path = DEFAULT_HOME
    tenant: str = "default"
    checkpoint_every: int = 1000
    write_queue_size: int = 1024
    write_batch_max: int = 2000
    write_timeout: float = 5.0
    read_threads: int = 4
    embedder: str = "minilm"
    fusion: str = "score"
    rrf_k: int = 60
    vector_weight: float = 0.6
    text_weight: float = 0.4
    # A tenant with at least this many vectors is searched through an HNSW graph (saved under
    # <home>/index/), below it exactly.
    ann_threshold: int = 20_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
        check_name("tenant", self.tenant)
        positive_ints = (
            "checkpoint_every",
            "write_queue_size",
            "write_batch_max",
            "read_threads",
            "rrf_k",
            "ann_threshold",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"setting {name} must be a positive integer, got {value!r}")
        for name in ("vector_weight", "text_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"setting {name} must be a number >= 0, got {value!r}")
        if self.fusion not in ("score", "rrf"):
            raise ConfigError(f"setting fusion must be 'score' or 'rrf', got {self.fusion!r}")
        if self.embedder not in ("minilm", "none"):
            raise ConfigError(f"setting embedder must be 'minilm' or 'none', got {self.embedder!r}")
        if not isinstance(self.write_timeout, int | float) or self.write_timeout <= 0:
            raise ConfigError(
                f"setting write_timeout must be > 0 seconds, got {self.write_timeout!r}"
            )

    @property
    def database_path(self) -> Path:
        """The SQLite database file inside the data directory."""
        return self.home / DATABASE_FILE_NAME

    @property
    def index_dir(self) -> Path:
        """Derived search indexes (HNSW graphs): safe to delete, rebuilt from the database."""
        return self.home / "index"

    @property
    def keys_dir(self) -> Path:
        """Directory of key files created by `cortex init` (mode 0700)."""
        return self.home / "keys"

    @property
    def signing_key_path(self) -> Path:
        """The Ed25519 private key that signs checkpoints (mode 0600)."""
        return self.keys_dir / "signing.key"

    @property
    def public_key_path(self) -> Path:
        """The public half of the signing key, for auditors (`verify-export --public-key`)."""
        return self.keys_dir / "signing.pub"

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with `changes` applied (validated like any other Settings)."""
        return replace(self, **changes)

    @classmethod
    def load(
        cls,
        home: str | os.PathLike[str] | None = None,
        *,
        config_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build Settings from `overrides` > `CORTEX_*` environment > TOML file > defaults."""
        env = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        unknown = set(overrides) - set(known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")

        home_value = home if home is not None else env.get("CORTEX_HOME") or DEFAULT_HOME
        home_path = Path(home_value).expanduser()
        file_value = config_file if config_file is not None else env.get("CORTEX_CONFIG")
        file_path = Path(file_value).expanduser() if file_value else home_path / CONFIG_FILE_NAME
        values: dict[str, Any] = {}
        if file_value or file_path.exists():
            values.update(_read_toml(file_path, known))
        for name, spec in known.items():
            raw = env.get(f"CORTEX_{name.upper()}")
            if raw is not None and name != "home":
                values[name] = _coerce(name, raw, spec.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["home"] = home_path
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"invalid settings: {exc}") from exc


def _read_toml(path: Path, known: Mapping[str, Any]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    section = data.get("cortex", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [cortex] must be a table")
    unknown = set(section) - set(known) - {"home"}
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return {k: v for k, v in section.items() if k != "home"}


def _coerce(name: str, raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"CORTEX_{name.upper()}={raw!r} is not a {kind}") from exc
    return raw
