"""Serving without torch: the ONNX Runtime path answers as the torch model does, and loads no torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import load_photo

from ml.runtime import BackboneFiles, OnnxEncoder

TORCH_STACK = ("torch", "torchvision", "timm")


@pytest.mark.slow
def test_the_served_model_matches_eager_torch_on_every_dev_photo(
    predictor, torch_predictor, shared_manifest, eval_data_dir, one_torch_thread
):
    """Stored embeddings, heads and drift references stay valid: same numbers, same answers."""
    rows = shared_manifest("manifest.csv")
    served, reference, dog_served, dog_reference = [], [], [], []
    for start in range(0, len(rows), 16):
        images = [load_photo((eval_data_dir / r["path"]).read_bytes()) for r in rows[start : start + 16]]
        embeddings, dog = predictor.embed(images)
        served.append(embeddings), dog_served.append(dog)
        embeddings, dog = torch_predictor.embed(images)
        reference.append(embeddings), dog_reference.append(dog)
    served, reference = np.concatenate(served), np.concatenate(reference)
    assert served.shape == reference.shape == (len(rows), 1280)
    np.testing.assert_allclose(served, reference, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.concatenate(dog_served), np.concatenate(dog_reference), atol=1e-4)
    head = predictor.base_head()
    assert (head.logits(served).argmax(1) == head.logits(reference).argmax(1)).all()


def test_preprocessing_gives_the_network_the_same_pixels_as_timm(predictor, torch_predictor, eval_data_dir):
    import torch

    paths = sorted((eval_data_dir / "images").rglob("*.jp*g"))[::40][:12]
    images = [load_photo(path.read_bytes()) for path in paths]
    # Odd shapes too: portrait, landscape, tiny, and one already at the resize target.
    images += [images[0].resize((97, 300)), images[1].resize((640, 181)), images[2].resize((256, 256))]
    ours = predictor.backbone.preprocess(images)
    timm = torch.stack([torch_predictor.backbone.transform(image) for image in images]).numpy()
    np.testing.assert_array_equal(ours, timm)


def test_a_damaged_export_is_refused_not_served(serving_backbone_dir, tmp_path):
    files = BackboneFiles.of(tmp_path, "lite0")
    for name in ("graph", "classifier", "sidecar"):
        shutil.copy(getattr(BackboneFiles.of(serving_backbone_dir, "lite0"), name), getattr(files, name))
    assert files.intact("lite0") and not files.intact("lite2")
    data = bytearray(files.graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    files.graph.write_bytes(bytes(data))
    assert not files.intact("lite0")  # so ensure_exported would export it again
    with pytest.raises(ValueError, match="corrupt"):
        OnnxEncoder(files)


@pytest.mark.slow
def test_a_damaged_export_is_made_again_in_a_child_process(serving_backbone_dir, tmp_path):
    """First start or a damaged file: the serving process exports through a child and never holds torch."""
    files = BackboneFiles.of(tmp_path, "lite0")
    for name in ("graph", "classifier", "sidecar"):
        shutil.copy(getattr(BackboneFiles.of(serving_backbone_dir, "lite0"), name), getattr(files, name))
    files.classifier.write_bytes(b"not the classifier")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from ml.runtime import OnnxEncoder
        encoder = OnnxEncoder.open("lite0", Path({str(tmp_path)!r}))
        print(encoder.embedding_dim, sorted(m for m in sys.modules if m.split(".")[0] in {TORCH_STACK!r}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.split() == ["1280", "[]"], result.stderr
    assert files.intact("lite0")


def test_predict_eval_and_ingest_never_import_torch(tmp_path, shared_manifest, eval_data_dir):
    """The commands people run on a small server, in one process as `dogbot` runs them."""
    rows = [r for r in shared_manifest("manifest.csv") if r["breed"] != "not_a_dog"][:3]
    manifest = tmp_path / "photos.csv"
    manifest.write_text("path,breed\n" + "".join(f"{eval_data_dir / r['path']},{r['breed']}\n" for r in rows))
    photo = str(eval_data_dir / rows[0]["path"])
    script = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from dogbot.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            codes = [
                main(["predict", "--json", {photo!r}]),
                main(["eval", "--manifest", {str(manifest)!r}, "--json"]),
                main(["ingest", {photo!r}]),
            ]
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {TORCH_STACK!r})
        print(json.dumps({{"codes": codes, "loaded": loaded, "first": out.getvalue().splitlines()[0]}}))
        """
    )
    env = {**os.environ, "DOGBOT_DATA_DIR": str(tmp_path / "data"), "DOGBOT_TORCH_THREADS": "1"}
    env.pop("DOGBOT_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, check=True
    )
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["codes"] == [0, 0, 0], result.stderr
    assert json.loads(report["first"])["is_dog"] is True  # it really classified the photo
    assert report["loaded"] == [], f"torch stack imported: {report['loaded'][:5]}"
    assert Path(env["DOGBOT_DATA_DIR"], "dogbot.db").is_file()  # ingest stored it
