"""Settings: one frozen object built from arguments, `CORTEX_*` environment variables and TOML.

Precedence, highest first: explicit arguments, environment, the TOML file
(`--config`/`CORTEX_CONFIG`, else `<home>/cortex.toml` when present), defaults. There is no
module-level settings object: build one with `Settings.load(...)` and pass it explicitly.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from cortex.errors import ConfigError, ValidationError
from cortex.model import check_name

__all__ = [
    "DEFAULT_HOME",
    "ENCRYPTED_SEARCH_MODES",
    "GATE_ACTIONS",
    "SHIELD_ACTIONS",
    "Settings",
    "ShieldRule",
    "shield_rules",
]

DEFAULT_HOME = Path("~/.cortex")
CONFIG_FILE_NAME = "cortex.toml"
DATABASE_FILE_NAME = "cortex.db"
SERVICE_DATABASE_FILE_NAME = "service.db"


SHIELD_ACTIONS = ("block", "redact", "allow")
GATE_ACTIONS = ("purge", "bulk_deprecate", "export", "rotate_master", "rotate_data", "policy")
ENCRYPTED_SEARCH_MODES = ("full", "vector", "none")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_SHIELD_SCOPES = ("tenants", "projects")


@dataclass(frozen=True, slots=True)
class ShieldRule:
    """One privacy shield rule: `action` for `target` (`secret`, `pii` or a detector kind).

    `tenant` and `project` narrow where it applies (None: every tenant / every project).
    """

    target: str
    action: str
    tenant: str | None = None
    project: str | None = None


def shield_rules(table: Mapping[str, Any]) -> tuple[ShieldRule, ...]:
    """Parse a `[shield]` table into rules; ConfigError when it is malformed.

    Keys are targets (`secret = "block"`, `email = "redact"`); the sub-tables
    `tenants.<name>` (which may hold `projects.<name>`) and `projects.<name>` scope them.
    """
    return tuple(_shield_scope(table, None, None, "shield"))


def _shield_scope(
    table: object, tenant: str | None, project: str | None, where: str
) -> list[ShieldRule]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where}] must be a table of target = action")
    rules: list[ShieldRule] = []
    for key, value in table.items():
        if key in _SHIELD_SCOPES and isinstance(value, Mapping):
            if key == "tenants" and (tenant is not None or project is not None):
                raise ConfigError(f"[{where}]: tenants cannot be nested inside a tenant or project")
            if key == "projects" and project is not None:
                raise ConfigError(f"[{where}]: projects cannot be nested inside a project")
            for name, sub in value.items():
                try:
                    check_name(key[:-1], name)
                except ValidationError as exc:
                    raise ConfigError(f"[{where}.{key}]: {exc}") from exc
                inner = f"{where}.{key}.{name}"
                if key == "tenants":
                    rules += _shield_scope(sub, name, project, inner)
                else:
                    rules += _shield_scope(sub, tenant, name, inner)
        elif isinstance(value, str) and value in SHIELD_ACTIONS:
            rules.append(ShieldRule(key, value, tenant, project))
        else:
            raise ConfigError(
                f"[{where}] {key} = {value!r}: the action must be one of"
                f" {', '.join(SHIELD_ACTIONS)}"
            )
    return rules


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
    embed_threads: int = 2
    vector_writes: str = "inline"
    fusion: str = "score"
    rrf_k: int = 60
    vector_weight: float = 0.6
    text_weight: float = 0.4
    # A tenant with at least this many vectors is searched through an HNSW graph (saved under
    # <home>/index/), below it exactly.
    ann_threshold: int = 20_000
    # A PostgreSQL URL (postgresql://user:pass@host/db; env CORTEX_DATABASE_URL): the store lives
    # there instead of <home>/cortex.db. The signing key stays under <home>/keys.
    database_url: str | None = None
    # Encryption at rest (`cortex init --encrypt`, docs/encryption.md): the master key file
    # (default <home>/keys/master.key), the environment variable that holds the passphrase of a
    # passphrase-encrypted store, and what the search indexes keep of encrypted facts ("full":
    # words and vectors, "vector": vectors only, "none": nothing, search is off).
    master_key_file: Path | None = None
    passphrase_env: str = "CORTEX_PASSPHRASE"
    encrypted_search: str = "none"
    # Service (`cortex serve`): request body limit, per-key and failed-auth token buckets.
    max_body_bytes: int = 8_388_608
    key_rate_per_second: float = 200.0
    key_rate_burst: int = 400
    auth_failure_per_second: float = 0.5
    auth_failure_burst: int = 20
    rate_limit_clients: int = 10_000
    key_cache_seconds: float = 5.0
    # Privacy shield policy (the `[shield]` table of cortex.toml; see docs/shield.md). A mapping
    # given here is parsed like that table.
    shield: tuple[ShieldRule, ...] = ()
    # Consensus (docs/consensus.md): a fact whose reputation-weighted vote score is at least
    # `consensus_verified` is verified; at most `consensus_disputed`, disputed.
    consensus_verified: float = 0.5
    consensus_disputed: float = -0.5
    # Approval gate (docs/gate.md): the actions that wait for an admin's approval (a TOML list,
    # or comma-separated in CORTEX_GATED_ACTIONS; empty: none), how many facts one deprecation
    # may name before it counts as bulk, pending approvals allowed per tenant, and how long an
    # approval lives (seconds) before it expires unused.
    gated_actions: tuple[str, ...] = GATE_ACTIONS
    gate_bulk_threshold: int = 10
    gate_max_pending: int = 100
    gate_ttl: float = 86_400.0
    # Whether the API key (identity) that asked for an approval may approve it itself. Off by
    # default: another admin key must (the command line, which holds the data directory, may).
    gate_self_approval: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
        shield: object = self.shield
        if isinstance(shield, Mapping):
            object.__setattr__(self, "shield", shield_rules(shield))
        elif not isinstance(shield, tuple) or not all(isinstance(r, ShieldRule) for r in shield):
            raise ConfigError("setting shield must be a [shield] table or a tuple of ShieldRule")
        check_name("tenant", self.tenant)
        positive_ints = (
            "checkpoint_every",
            "write_queue_size",
            "write_batch_max",
            "read_threads",
            "embed_threads",
            "rrf_k",
            "ann_threshold",
            "max_body_bytes",
            "key_rate_burst",
            "auth_failure_burst",
            "rate_limit_clients",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"setting {name} must be a positive integer, got {value!r}")
        for name in ("vector_weight", "text_weight", "key_cache_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"setting {name} must be a number >= 0, got {value!r}")
        if self.fusion not in ("score", "rrf"):
            raise ConfigError(f"setting fusion must be 'score' or 'rrf', got {self.fusion!r}")
        if self.database_url is not None and not (
            isinstance(self.database_url, str)
            and self.database_url.startswith(("postgresql://", "postgres://"))
        ):
            raise ConfigError("setting database_url must start with postgresql:// or postgres://")
        if self.master_key_file is not None:
            object.__setattr__(self, "master_key_file", Path(self.master_key_file).expanduser())
        if not isinstance(self.passphrase_env, str) or not _ENV_NAME.fullmatch(self.passphrase_env):
            raise ConfigError(
                f"setting passphrase_env must be an environment variable name, got"
                f" {self.passphrase_env!r}"
            )
        if self.encrypted_search not in ENCRYPTED_SEARCH_MODES:
            raise ConfigError(
                "setting encrypted_search must be 'full', 'vector' or 'none', got"
                f" {self.encrypted_search!r}"
            )
        if self.embedder not in ("minilm", "minilm-torch", "none"):
            raise ConfigError(
                "setting embedder must be 'minilm', 'minilm-torch' or 'none', got"
                f" {self.embedder!r}"
            )
        if self.vector_writes not in ("inline", "background"):
            raise ConfigError(
                "setting vector_writes must be 'inline' or 'background', got"
                f" {self.vector_writes!r}"
            )
        if not isinstance(self.write_timeout, int | float) or self.write_timeout <= 0:
            raise ConfigError(
                f"setting write_timeout must be > 0 seconds, got {self.write_timeout!r}"
            )
        for name in ("key_rate_per_second", "auth_failure_per_second"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"setting {name} must be a number > 0, got {value!r}")
        object.__setattr__(self, "gated_actions", _gated_actions(self.gated_actions))
        for name in ("gate_bulk_threshold", "gate_max_pending"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"setting {name} must be a positive integer, got {value!r}")
        if not isinstance(self.gate_self_approval, bool):
            raise ConfigError(
                f"setting gate_self_approval must be true or false, got {self.gate_self_approval!r}"
            )
        ttl = self.gate_ttl
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
            raise ConfigError(f"setting gate_ttl must be a number of seconds > 0, got {ttl!r}")
        for name, low, high in (("consensus_verified", 0, 1), ("consensus_disputed", -1, 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"setting {name} must be a number, got {value!r}")
            if not low < value < high:
                raise ConfigError(f"setting {name} must be in ({low}, {high}), got {value!r}")

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

    @property
    def master_key_path(self) -> Path:
        """The master key file of an encrypted store (mode 0600, created by `init --encrypt`)."""
        return self.master_key_file or self.keys_dir / "master.key"

    @property
    def server_secret_path(self) -> Path:
        """The 32-byte secret that keys API key hashes (mode 0600, created by `cortex init`)."""
        return self.keys_dir / "server.secret"

    @property
    def gate_key_path(self) -> Path:
        """The 32-byte HMAC key of approval tokens (mode 0600, created by `cortex init`)."""
        return self.keys_dir / "gate.key"

    @property
    def service_database_path(self) -> Path:
        """The SQLite file of the service's API keys (hashes only)."""
        return self.home / SERVICE_DATABASE_FILE_NAME

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
            if raw is not None and name not in ("home", "shield"):
                values[name] = _coerce(name, raw, spec.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["home"] = home_path
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"invalid settings: {exc}") from exc


def _gated_actions(value: object) -> tuple[str, ...]:
    """The `gated_actions` setting as a tuple of known action names (from text or a list)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"setting gated_actions must be a list of action names, got {value!r}")
    unknown = sorted(set(value) - set(GATE_ACTIONS))
    if unknown:
        raise ConfigError(
            f"setting gated_actions: unknown action(s) {', '.join(unknown)};"
            f" known: {', '.join(GATE_ACTIONS)}"
        )
    return tuple(dict.fromkeys(value))


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
    values = {k: v for k, v in section.items() if k != "home"}
    if section is not data and "shield" in data:
        values["shield"] = data["shield"]  # a top-level [shield] beside [cortex]
    return values


def _coerce(name: str, raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"CORTEX_{name.upper()}={raw!r} is not true or false")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"CORTEX_{name.upper()}={raw!r} is not a {kind}") from exc
    return raw
