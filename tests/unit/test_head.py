"""Breed heads are written atomically, refuse to load when corrupted, and load without torch."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ml.head import BreedHead, sidecar_path
from storage.blobs import write_bytes_atomically


def small_head() -> BreedHead:
    rng = np.random.default_rng(0)
    return BreedHead(["pug", "boxer"], rng.normal(size=(2, 4)), np.zeros(2), backbone="lite0")


def test_save_and_load_round_trip(tmp_path):
    head = small_head()
    digest = head.save(tmp_path / "head.safetensors", write=write_bytes_atomically)
    loaded = BreedHead.load(tmp_path / "head.safetensors")
    assert loaded.breed_keys == ["pug", "boxer"]
    assert np.array_equal(loaded.weight, head.weight) and loaded.weight.dtype == np.float32
    assert len(digest) == 64
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_a_head_saved_by_torch_before_safetensors_still_loads(tmp_path):
    import torch

    head = small_head()
    path = tmp_path / "lite0-v1.pt"  # as retrain wrote heads before they were safetensors files
    torch.save({"weight": torch.from_numpy(head.weight), "bias": torch.from_numpy(head.bias)}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar_path(path).write_text(
        json.dumps({"breed_keys": head.breed_keys, "backbone": "lite0", "sha256": digest})
    )
    loaded = BreedHead.load(path)
    assert np.array_equal(loaded.weight, head.weight) and np.array_equal(loaded.bias, head.bias)


def test_a_corrupted_artifact_is_refused(tmp_path):
    path = tmp_path / "head.safetensors"
    small_head().save(path, write=write_bytes_atomically)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="corrupt"):
        BreedHead.load(path)


def test_rows_must_match_breeds():
    with pytest.raises(ValueError):
        BreedHead(["pug"], np.zeros((2, 4)), np.zeros(2), backbone="lite0")
    with pytest.raises(ValueError):
        BreedHead(["pug", "pug"], np.zeros((2, 4)), np.zeros(2), backbone="lite0")


def test_probabilities_sum_to_one():
    probabilities = small_head().probabilities(np.random.default_rng(1).normal(size=(3, 4)))
    np.testing.assert_allclose(probabilities.sum(axis=1), np.ones(3), rtol=1e-6)
    assert sidecar_path(Path("x/head.pt")).name == "head.pt.json"
