"""Large models: the code of an 8B Llama-3 shape compiles on the meta device in <= 10 s, and a sharded
checkpoint converts with a peak RSS growth <= 1.2x its largest shard. Both print their figures."""
from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.slow


def test_meta_compile_of_an_8b_llama_shape(tmp_path):
    import transformers

    from fx2mlx.recipes.causal_lm import compile_llm
    from fx2mlx.llm.testing import LLAMA_3_8B

    cfg = transformers.LlamaConfig(**LLAMA_3_8B)
    cfg.architectures = ["LlamaForCausalLM"]
    cfg.save_pretrained(tmp_path / "cfg")  # config.json only: no weights anywhere
    compile_llm(tmp_path / "cfg", tmp_path / "warm", weights=False)  # imports, torch.export's first-use setup
    t = time.perf_counter()
    _, times = compile_llm(tmp_path / "cfg", tmp_path / "out", weights=False)
    seconds = time.perf_counter() - t
    print(f"\n8B Llama-3 shape, meta device: compiled in {seconds:.1f} s "
          f"({', '.join(f'{k} {v:.1f}' for k, v in times.items())}; load average {os.getloadavg()[0]:.1f})")
    code = (tmp_path / "out" / "model.py").read_text()
    assert "self.layers = [LlamaDecoderLayer() for _ in range(32)]" in code
    assert "nn.Linear(4096, 14336, bias=False)" in code and "nn.Embedding(128256, 4096)" in code
    # The time is printed, not asserted (timings belong in bench/, and this machine is shared): 2 layers
    # are captured and the identical rest unrolled, which the checks above establish. Only a compile that
    # no longer skips the identical layers (minutes) is caught here.
    assert seconds <= 120.0, f"{seconds:.0f} s: were all 32 layers captured?"


def test_sharded_conversion_peak_rss(tmp_path):
    from fx2mlx.llm import load_llm
    from fx2mlx.llm.testing import config, save_model, sharded_conversion_check

    cfg = config("llama", vocab_size=32000, hidden_size=1024, intermediate_size=4096, num_hidden_layers=8,
                 num_attention_heads=16, num_key_value_heads=4)
    save_model(cfg, tmp_path / "hf", min_shard_bytes=200 << 20)
    r = sharded_conversion_check(tmp_path / "hf", tmp_path / "out")
    print(f"\nsharded conversion: {r['shards']} shards, largest {r['largest_shard'] / 2**20:.0f} MiB, "
          f"peak RSS growth {r['rss_growth'] / 2**20:.0f} MiB = {r['ratio']:.2f}x the largest shard, {r['seconds']:.1f} s")
    sizes = [p.stat().st_size for p in (tmp_path / "hf").glob("*.safetensors")]
    assert len(sizes) >= 3 and min(sizes) >= 200 << 20
    assert r["ratio"] <= 1.2
    assert len(list(load_llm(tmp_path / "out").stream([1, 2, 3], max_tokens=3))) == 3
