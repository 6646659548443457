"""Dynamic dimensions: compiled once, the MLX model runs at other sizes and matches PyTorch."""
import torch

import fx2mlx
from fx2mlx.compiler.capture import parse_dynamic
from helpers import max_abs_diff
from zoo import ZOO


def test_bert_dynamic_sequence_length(tmp_path):
    m, args, kwargs = ZOO["bert_tiny"]()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    spec = [f"{n}:1=seq" for n in names if n in kwargs]
    c = fx2mlx.convert(m, args, kwargs, dynamic_shapes=parse_dynamic(spec, m, args, kwargs), out_dir=tmp_path / "o")
    for length in (3, 11):
        torch.manual_seed(length)
        kw = {k: (torch.randint(1, 50, (2, length)) if k == "input_ids" else torch.ones(2, length, dtype=torch.long)
                  if k == "attention_mask" else torch.zeros(2, length, dtype=torch.long)) for k in kwargs}
        with torch.no_grad():
            ref = m(**kw).last_hidden_state
        out = c(**{k: v.numpy() for k, v in kw.items()})["last_hidden_state"]
        assert max_abs_diff(ref, out) < 1e-4


def test_bad_dynamic_spec_is_a_clear_error():
    import pytest

    from fx2mlx.compiler.errors import SourceError

    m, (x,) = ZOO["mlp"]()
    with pytest.raises(SourceError, match="is not an input"):
        parse_dynamic(["nope:0"], m, (x,), {})
    with pytest.raises(SourceError, match="expected NAME:DIM"):
        parse_dynamic(["input"], m, (x,), {})
