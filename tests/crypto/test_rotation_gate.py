"""Key rotations are gated actions by default: asked for, approved by an admin, run once."""

from __future__ import annotations

from pathlib import Path

import pytest

import cortex
from cortex import Settings
from cortex.errors import ApprovalForeignTenant, ApprovalReplayed, ApprovalRequired


class _Stop(Exception):
    pass


@pytest.fixture
def gated(tmp_path: Path) -> Settings:
    """An encrypted store with the default settings: every rotation needs an approval."""
    settings = Settings.load(tmp_path / "home", embedder="none")
    cortex.init_home(settings, encrypt=True)
    assert {"rotate_master", "rotate_data"} <= set(settings.gated_actions)
    return settings


def test_a_data_rotation_waits_for_approval_and_its_token_works_once(gated: Settings) -> None:
    with cortex.connect(gated) as memory:
        memory.store_many([{"content": f"fact {i}"} for i in range(40)], tenant="acme")
        with pytest.raises(ApprovalRequired) as asked:
            memory.rotate_data_key("acme")
        (pending,) = memory.approvals(tenant="acme")
        assert (pending.id, pending.action, pending.params) == (
            asked.value.approval_id,
            "rotate_data",
            {"tenant": "acme"},
        )
        assert memory.events(["key_rotate"], tenant="acme") == []  # nothing rotated yet
        token = memory.approve(pending.id, tenant="acme").token
        assert token is not None
        memory.store("x", tenant="globex")
        with pytest.raises(ApprovalForeignTenant):  # a token of tenant acme does not serve globex
            memory.rotate_data_key("globex", approval=token)
        rotation = memory.rotate_data_key("acme", approval=token)
        assert (rotation.version, rotation.resealed) == (2, 40)
        with pytest.raises(ApprovalReplayed):
            memory.rotate_data_key("acme", approval=token)
        gate_ops = ["gate_request", "gate_decision", "gate_used", "key_rotate"]
        ops = [tx.op for tx in memory.events(gate_ops, tenant="acme")]
        assert ops == ["gate_request", "gate_decision", "gate_used", "key_rotate"]
        assert memory.verify().ok


def test_resuming_an_approved_data_rotation_needs_no_new_approval(gated: Settings) -> None:
    with cortex.connect(gated) as memory:
        memory.store_many([{"content": f"fact {i}"} for i in range(120)])
        with pytest.raises(ApprovalRequired) as asked:
            memory.rotate_data_key()
        token = memory.approve(asked.value.approval_id).token

        def stop_midway(done: int, total: int) -> None:
            if done >= 60:
                raise _Stop

        with pytest.raises(_Stop):
            memory.rotate_data_key(approval=token, batch=30, progress=stop_midway)
        rotation = memory.rotate_data_key(batch=30)  # no token: it finishes what was approved
        assert (rotation.resumed, rotation.version, rotation.resealed) == (True, 2, 60)
        with pytest.raises(ApprovalRequired):  # a further rotation is a new request
            memory.rotate_data_key()


def test_a_master_rotation_waits_for_approval_in_the_chosen_tenant(gated: Settings) -> None:
    old_key = gated.master_key_path.read_bytes()
    with cortex.connect(gated) as memory:
        memory.store("sealed", tenant="acme")
        with pytest.raises(ApprovalRequired) as asked:
            memory.rotate_master_key(tenant="ops")
        assert gated.master_key_path.read_bytes() == old_key
        (pending,) = memory.approvals(tenant="ops")
        assert (pending.action, pending.params) == ("rotate_master", {"source": "file"})
        token = memory.approve(asked.value.approval_id, tenant="ops").token
        with pytest.raises(ApprovalForeignTenant):  # the token is for tenant ops only
            memory.rotate_master_key(approval=token)
        rotation = memory.rotate_master_key(approval=token, tenant="ops")
        assert (rotation.version, rotation.rewrapped) == (2, 1)
    assert gated.master_key_path.read_bytes() != old_key
    with cortex.connect(gated) as memory:
        assert memory.list(tenant="acme").items[0].content == "sealed"
