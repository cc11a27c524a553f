"""The shield's policy: which action a finding gets, decided by a pure function over the rules.

Rules come from the `[shield]` table of `cortex.toml` (see `cortex.config.shield_rules`).
Precedence: the most specific scope wins (tenant and project, then tenant, then project, then
everywhere, then the built-in defaults); within one scope a rule for the detector kind beats a
rule for its category. Defaults: block secrets, allow personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, cast

from cortex.config import ShieldRule
from cortex.errors import ConfigError
from cortex.shield.detectors import CATEGORIES, Category

__all__ = ["ACTIONS", "DEFAULT_ACTIONS", "Action", "check_rules", "decide"]

Action = Literal["block", "redact", "allow"]
ACTIONS: tuple[Action, ...] = ("block", "redact", "allow")
DEFAULT_ACTIONS: Mapping[Category, Action] = {"secret": "block", "pii": "allow"}


def _scope_rank(rule: ShieldRule) -> int:
    return (2 if rule.tenant is not None else 0) + (1 if rule.project is not None else 0)


def decide(
    rules: Sequence[ShieldRule], *, tenant: str, project: str, kind: str, category: Category
) -> Action:
    """Return the action for a finding of `kind` (in `category`) written to `tenant`/`project`.

    Among the rules that apply (same tenant or none, same project or none, target = kind or
    category), the one with the most specific scope wins, then a kind rule over a category rule,
    then the later rule. No rule applies: `DEFAULT_ACTIONS[category]`.
    """
    best: ShieldRule | None = None
    best_rank = (-1, False)
    for rule in rules:
        if rule.tenant is not None and rule.tenant != tenant:
            continue
        if rule.project is not None and rule.project != project:
            continue
        if rule.target != kind and rule.target != category:
            continue
        rank = (_scope_rank(rule), rule.target == kind)
        if rank >= best_rank:
            best, best_rank = rule, rank
    if best is None:
        return DEFAULT_ACTIONS[category]
    return cast(Action, best.action)


def check_rules(rules: Iterable[ShieldRule], known_kinds: Iterable[str]) -> None:
    """Raise ConfigError for a rule whose target is no category or detector kind, or bad action."""
    targets = set(CATEGORIES) | set(known_kinds)
    for rule in rules:
        if rule.target not in targets:
            raise ConfigError(
                f"shield rule {rule.target} = {rule.action!r}: unknown target; use secret, pii"
                f" or a detector kind ({', '.join(sorted(targets - set(CATEGORIES)))})"
            )
        if rule.action not in ACTIONS:
            raise ConfigError(
                f"shield rule {rule.target} = {rule.action!r}: the action must be one of"
                f" {', '.join(ACTIONS)}"
            )
