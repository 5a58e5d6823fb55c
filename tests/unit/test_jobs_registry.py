"""jobs.registry: which champion a rollback returns to, and how a version names its backbone."""

from jobs.registry import champion_stack
from storage.lifecycle_tables import AliasMove


def _moves(*pairs):
    return [AliasMove(to_version=version, kind=kind, reason="", actor="test") for kind, version in pairs]


def test_promotions_push_and_rollbacks_pop():
    moves = _moves(("init", "v0"), ("promote", "v1"), ("promote", "v2"), ("rollback", "v1"))
    assert champion_stack(moves) == ["v0", "v1"]
    assert champion_stack([*moves, *_moves(("rollback", "v0"))]) == ["v0"]


def test_two_replicas_recording_the_first_champion_do_not_make_a_rollback_to_itself():
    moves = _moves(("init", "v0"), ("init", "v0"), ("promote", "v1"))
    assert champion_stack(moves) == ["v0", "v1"]
    assert champion_stack(_moves(("init", "v0"), ("init", "v0"))) == ["v0"]  # nothing to roll back to


def test_a_version_names_its_backbone():
    from ml.predictor import backbone_of, base_version

    assert backbone_of("lite0-v12") == "lite0" and backbone_of("lite0gem-v3") == "lite0gem"
    assert backbone_of(base_version("lite2")) == "lite2"
