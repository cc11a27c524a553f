"""The shield policy: a pure decision over rules, parsed from the [shield] table of cortex.toml."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex.config import Settings, ShieldRule, shield_rules
from cortex.errors import ConfigError
from cortex.shield import ACTIONS, Shield, decide, kinds

KINDS = sorted(kinds())
names = st.sampled_from(["acme", "globex", "initech"])
rules_strategy = st.lists(
    st.builds(
        ShieldRule,
        target=st.sampled_from(["secret", "pii", *KINDS]),
        action=st.sampled_from(ACTIONS),
        tenant=st.none() | names,
        project=st.none() | names,
    ),
    max_size=12,
)


def test_defaults_block_secrets_and_allow_personal_data() -> None:
    assert decide((), tenant="t", project="p", kind="aws_access_key", category="secret") == "block"
    assert decide((), tenant="t", project="p", kind="email", category="pii") == "allow"


def test_more_specific_scope_wins_then_kind_over_category() -> None:
    rules = (
        ShieldRule("email", "block"),
        ShieldRule("pii", "redact", tenant="acme"),
        ShieldRule("phone", "allow", tenant="acme", project="support"),
    )

    def action(tenant: str, project: str, kind: str) -> str:
        return decide(rules, tenant=tenant, project=project, kind=kind, category="pii")

    assert action("globex", "x", "email") == "block"  # global kind rule
    assert action("globex", "x", "phone") == "allow"  # default
    assert action("acme", "x", "email") == "redact"  # tenant category beats global kind
    assert action("acme", "support", "phone") == "allow"  # tenant+project beats tenant
    assert action("acme", "support", "email") == "redact"


@given(rules_strategy, names, names, st.sampled_from(KINDS))
def test_a_tenant_and_project_rule_for_the_kind_always_decides(
    rules: list[ShieldRule], tenant: str, project: str, kind: str
) -> None:
    category = kinds()[kind]
    final = ShieldRule(kind, "redact", tenant=tenant, project=project)

    assert (
        decide([*rules, final], tenant=tenant, project=project, kind=kind, category=category)
        == "redact"
    )


@given(rules_strategy, names, names, st.sampled_from(KINDS))
def test_rules_for_other_tenants_never_change_a_decision(
    rules: list[ShieldRule], tenant: str, project: str, kind: str
) -> None:
    category = kinds()[kind]
    mine = [r for r in rules if r.tenant in (None, tenant)]

    assert decide(rules, tenant=tenant, project=project, kind=kind, category=category) == decide(
        mine, tenant=tenant, project=project, kind=kind, category=category
    )


def test_shield_table_in_cortex_toml_becomes_scoped_rules(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "cortex.toml").write_text(
        '[cortex]\ntenant = "acme"\n\n'
        '[shield]\npii = "redact"\nemail = "allow"\n\n'
        '[shield.projects.hr]\npii = "block"\n\n'
        '[shield.tenants.acme]\nsecret = "redact"\n\n'
        '[shield.tenants.acme.projects.billing]\niban = "allow"\n'
    )

    settings = Settings.load(home, environ={})

    assert set(settings.shield) == {
        ShieldRule("pii", "redact"),
        ShieldRule("email", "allow"),
        ShieldRule("pii", "block", project="hr"),
        ShieldRule("secret", "redact", tenant="acme"),
        ShieldRule("iban", "allow", tenant="acme", project="billing"),
    }


@pytest.mark.parametrize(
    "table",
    [{"secret": "delete"}, {"secret": 1}, {"tenants": {"bad name!": {"pii": "block"}}},
     {"projects": {"p": {"tenants": {"t": {"pii": "block"}}}}}],
)  # fmt: skip
def test_malformed_shield_tables_are_config_errors(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        shield_rules(table)


def test_a_rule_for_an_unknown_kind_fails_when_the_shield_is_built() -> None:
    with pytest.raises(ConfigError, match="unknown target"):
        Shield(shield_rules({"aws_key": "allow"}))
