"""The `lite0gem` option: Lite0's last feature map pooled two ways, on real photos."""

from __future__ import annotations

import numpy as np
from conftest import load_photo

from ml.predictor import Predictor


def test_lite0gem_adds_gem_pooling_and_answers_zero_shot_exactly_as_lite0(
    predictor, shared_manifest, eval_data_dir, serving_backbone_dir
):
    rows = [r for r in shared_manifest("manifest.csv") if r["imagenet_overlap"] == "no"][:4]
    images = [load_photo((eval_data_dir / r["path"]).read_bytes()) for r in rows]
    gem = Predictor.pretrained("lite0gem", predictor.imagenet_breeds, backbone_dir=serving_backbone_dir)

    average, dog = predictor.embed(images)
    both, dog_gem = gem.embed(images)

    assert average.shape == (4, 1280) and both.shape == (4, 2560) == (4, gem.embedding_dim)
    np.testing.assert_allclose(both[:, :1280], average, rtol=1e-4, atol=1e-5)  # the average comes first
    # GeM (p=3) lies between the average and the maximum of each channel, so never below the average.
    assert (both[:, 1280:] >= average - 1e-4).all() and (both[:, 1280:] > average + 1e-3).any()
    np.testing.assert_allclose(dog_gem, dog, rtol=1e-4, atol=1e-5)
    # Version 0 reads only the average half: the same breed answers as plain Lite0.
    plain = predictor.predict_embeddings(average, dog)
    pooled = gem.predict_embeddings(both, dog_gem)
    for a, b in zip(plain, pooled, strict=True):
        np.testing.assert_allclose(b.breed_probabilities, a.breed_probabilities, rtol=1e-4, atol=1e-6)
    assert gem.base_head().embedding_dim == 2560 and gem.base_head().backbone == "lite0gem"
