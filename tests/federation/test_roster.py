"""The roster: admitted keys, revocation, and a signature nobody else can make."""

import pytest

from koprogo_node.errors import ConfigError
from koprogo_node.federation import roster
from koprogo_node.federation.envelope import open_envelope, seal
from koprogo_node.federation.identity import NodeKey

NOW = 1_800_000_000.0


def key(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    return NodeKey.load_or_create(folder)


def test_admitted_node_is_on_the_roster_and_revoked_one_is_not(tmp_path):
    """Admit two nodes, revoke one: only the other remains admitted."""
    federation, a, b = (key(tmp_path, n) for n in ("fed", "a", "b"))
    signed = roster.empty(federation, NOW)
    signed = roster.admit(signed, federation, a.peer_id, "Résidence A", NOW)
    signed = roster.admit(signed, federation, b.peer_id, "Résidence B", NOW)

    signed = roster.revoke(signed, federation, b.peer_id, NOW + 60)

    current = roster.read(signed, federation.public_key)
    assert current.admitted() == {a.public_key}
    assert current.serial == 3
    assert current.members[a.public_key] == "Résidence A"


def test_messages_from_revoked_keys_are_refused(tmp_path):
    """The envelope check uses the roster: a revoked node's message is refused."""
    federation, a = key(tmp_path, "fed"), key(tmp_path, "a")
    signed = roster.admit(
        roster.empty(federation, NOW), federation, a.peer_id, "A", NOW
    )
    wire = seal(a, "t", 1, NOW, {})
    before = roster.read(signed, federation.public_key)
    after = roster.read(
        roster.revoke(signed, federation, a.peer_id, NOW), federation.public_key
    )

    assert open_envelope(wire, NOW, before, set()).seq == 1
    assert open_envelope(wire, NOW, after, set()) == "not_on_roster"


def test_roster_signed_by_another_key_is_refused(tmp_path):
    """A roster made with any key but the federation's does not verify."""
    federation, impostor = key(tmp_path, "fed"), key(tmp_path, "x")
    forged = roster.empty(impostor, NOW)

    with pytest.raises(ConfigError, match="another federation key"):
        roster.read(forged, federation.public_key)


def test_edited_roster_is_refused(tmp_path):
    """Changing one byte of a signed roster breaks its signature."""
    federation = key(tmp_path, "fed")
    signed = bytearray(roster.empty(federation, NOW))
    signed[-70] ^= 1

    with pytest.raises(ConfigError):
        roster.read(bytes(signed), federation.public_key)


def test_older_roster_never_replaces_a_newer_one(tmp_path):
    """A replayed older roster (revoked key still in it) is not taken."""
    federation, a = key(tmp_path, "fed"), key(tmp_path, "a")
    old = roster.admit(roster.empty(federation, NOW), federation, a.peer_id, "A", NOW)
    new = roster.revoke(old, federation, a.peer_id, NOW)

    current = roster.read(new, federation.public_key)

    assert not roster.newer(current, roster.read(old, federation.public_key))


def test_cooperative_tools_admit_and_revoke_a_node(tmp_path):
    """federation init, admit and revoke sign successive rosters a node accepts."""
    from ..daemon.conftest import cli

    node = key(tmp_path, "node")
    folder = str(tmp_path / "coop")

    steps = [
        cli("federation", "init", "--dir", folder),
        cli("federation", "admit", node.peer_id, "--name", "Res A", "--dir", folder),
        cli("federation", "revoke", node.peer_id, "--dir", folder),
        cli("federation", "admit", "not-a-peer", "--name", "x", "--dir", folder),
    ]

    assert [s.returncode for s in steps] == [0, 0, 0, 2]
    assert "not-a-peer" in steps[3].stderr and "Traceback" not in steps[3].stderr
    federation = NodeKey.load_or_create(tmp_path / "coop", "federation_key")
    current = roster.read(
        (tmp_path / "coop" / "roster.cbor").read_bytes(), federation.public_key
    )
    assert current.serial == 2
    assert node.public_key in current.members
    assert node.public_key not in current
