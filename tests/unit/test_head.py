"""Breed heads are written atomically and refuse to load when corrupted."""

from pathlib import Path

import pytest
import torch

from ml.head import BreedHead, sidecar_path
from storage.blobs import write_bytes_atomically


def small_head() -> BreedHead:
    torch.manual_seed(0)
    return BreedHead(["pug", "boxer"], torch.randn(2, 4), torch.zeros(2), backbone="lite0")


def test_save_and_load_round_trip(tmp_path):
    head = small_head()
    digest = head.save(tmp_path / "head.pt", write=write_bytes_atomically)
    loaded = BreedHead.load(tmp_path / "head.pt")
    assert loaded.breed_keys == ["pug", "boxer"]
    assert torch.equal(loaded.weight, head.weight)
    assert len(digest) == 64
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_a_corrupted_artifact_is_refused(tmp_path):
    path = tmp_path / "head.pt"
    small_head().save(path, write=write_bytes_atomically)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="corrupt"):
        BreedHead.load(path)


def test_rows_must_match_breeds():
    with pytest.raises(ValueError):
        BreedHead(["pug"], torch.zeros(2, 4), torch.zeros(2), backbone="lite0")
    with pytest.raises(ValueError):
        BreedHead(["pug", "pug"], torch.zeros(2, 4), torch.zeros(2), backbone="lite0")


def test_probabilities_sum_to_one():
    probabilities = small_head().probabilities(torch.randn(3, 4))
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(3))
    assert sidecar_path(Path("x/head.pt")).name == "head.pt.json"
