"""Weights whose state_dict name is not a checkpoint key: transformers' own checkpoint conversion.

transformers 5.x renames and merges some checkpoint tensors at load (`conversion_mapping.py`): Mixtral's
`block_sparse_moe.experts.{e}.w1/w3.weight` become `mlp.experts.gate_up_proj` (E, 2I, H) — experts
stacked, gate and up concatenated — and `w2` becomes `mlp.experts.down_proj`; Qwen2/3-MoE's per-expert
`gate_proj/up_proj/down_proj` likewise. The compiled model keeps transformers' state_dict names
(`model.layers.0.mlp.experts.gate_up_proj`), so where a checkpoint holds the old layout (every released
MoE checkpoint does), the weight is built here, at conversion time, by running transformers' own
renamings and conversion operations on the checkpoint tensors of that one weight — the checkpoint is
read tensor by tensor, never whole (what a large model captured on the meta device needs).
"""
from __future__ import annotations

import re

import numpy as np


class Sources:
    """state_dict name -> how transformers builds it from checkpoint keys (its renamings, then at most one
    converter), for the checkpoint keys that are not state_dict names themselves."""

    def __init__(self, module, keys):
        self.targets: dict[str, tuple] = {}
        try:
            from transformers.conversion_mapping import get_model_conversion_mapping
            from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key
        except ImportError:  # transformers 4.x: checkpoints load as stored
            return
        transforms = get_model_conversion_mapping(module) if module is not None else []
        renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
        converters = [t for t in transforms if isinstance(t, WeightConverter)]
        if not transforms:
            return
        for key in sorted(keys, key=_natural):
            target, pattern = rename_source_key(key, renamings, converters)
            if target == key:
                continue
            conv = next((c for c in converters if pattern in c.source_patterns), None) if pattern else None
            _, groups = self.targets.setdefault(target, (conv, {}))
            groups.setdefault(pattern, []).append(key)

    def __contains__(self, target: str) -> bool:
        return target in self.targets

    def build(self, target: str, read):
        """The tensor `target` (numpy), from the checkpoint tensors read(key) -> numpy."""
        import torch

        conv, groups = self.targets[target]
        if conv is None:  # a plain renaming
            (keys,) = groups.values()
            return read(keys[0])
        tensors = {p: [torch.from_numpy(np.array(read(k))) for k in ks] for p, ks in groups.items()}
        for op in conv.operations:
            tensors = op.convert(tensors, source_patterns=conv.source_patterns, target_patterns=conv.target_patterns,
                                 full_layer_name=target, model=None, config=None, missing_keys=None)
        if len(tensors) != 1:
            raise ValueError(f"{target}: transformers' conversion gave {len(tensors)} tensors ({sorted(tensors)})")
        return next(iter(tensors.values())).contiguous().numpy()


def _natural(key: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]
