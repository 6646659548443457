"""`fx2mlx generate`: stream tokens from a compiled decoder LLM (text when OUT has a tokenizer).

`fx2mlx compile` hands Hugging Face `*ForCausalLM` directories to the causal-lm recipe (`fx2mlx.recipes.causal_lm`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)
    from .transcribe_cli import transcribe_cmd
    from .translate_cli import translate_cmd

    app.command("translate")(translate_cmd)
    app.command("transcribe")(transcribe_cmd)


def generate_cmd(
    out: Path = typer.Argument(..., help="A folder compiled from a causal LM (fx2mlx compile LLAMA_DIR -o OUT)."),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Prompt text (needs tokenizer.json in OUT)."),
    prompt_ids: Optional[str] = typer.Option(None, "--prompt-ids", help="Prompt token ids, e.g. 1,2,3."),
    max_tokens: int = typer.Option(64, "--max-tokens", help="How many new tokens at most."),
    temp: float = typer.Option(0.0, "--temp", help="Sampling temperature (0: greedy)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling: keep the top tokens up to this mass."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed for sampling."),
    ignore_eos: bool = typer.Option(False, "--ignore-eos", help="Do not stop at the end-of-sequence token."),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", help="Encoder-decoder models: beam search with "
                                            "this many beams (default: the model's generation config)."),
    as_json: bool = typer.Option(False, "--json", help='Print {"tokens": [...]} (the new token ids) at the end.'),
):
    """Generate from OUT: prints tokens as they come (text, or ids without a tokenizer). For an
    encoder-decoder model (recipe seq2seq) the prompt is the encoder input and the output the decoder's
    tokens (greedy or beam search, HF generate's semantics)."""
    from .. import blas
    from ..compiler.errors import Fx2MlxError

    blas.use_optimized_blas()
    from .api import load_llm

    if (prompt is None) == (prompt_ids is None):
        raise Fx2MlxError("pass exactly one of --prompt TEXT or --prompt-ids 1,2,3")
    ids = None
    if prompt_ids is not None:
        try:
            ids = [int(x) for x in prompt_ids.replace(" ", "").split(",") if x]
        except ValueError:
            raise Fx2MlxError(f"--prompt-ids must be comma-separated integers, got {prompt_ids!r}") from None
    from ..manifest import read_manifest

    if read_manifest(out).get("recipe") == "speech-to-text":
        raise Fx2MlxError(f"{out} is a speech-to-text model: use fx2mlx transcribe OUT AUDIO")
    if read_manifest(out).get("recipe") == "seq2seq":
        return _generate_seq2seq(out, ids, prompt, max_tokens, num_beams, as_json)
    if num_beams is not None:
        raise Fx2MlxError("--num-beams applies to encoder-decoder models (recipe seq2seq); causal LMs generate "
                          "greedily or by sampling (--temp, --top-p)")
    lm = load_llm(out)
    lm.check_sampling(max_tokens, temp, top_p)
    if prompt is not None and lm.tokenizer is None:
        raise Fx2MlxError(f"{out} has no tokenizer.json: pass --prompt-ids 1,2,3 instead of --prompt")
    ids = lm.encode(prompt) if prompt is not None else lm.check_prompt(ids)
    text_mode = lm.tokenizer is not None
    t0 = time.perf_counter()
    n, first = 0, None
    shown = ""
    new: list[int] = []
    for tok in lm.stream(ids, max_tokens=max_tokens, temp=temp, top_p=top_p, seed=seed, stop_at_eos=not ignore_eos):
        if first is None:
            first = time.perf_counter()
        new.append(tok)
        n += 1
        if text_mode:
            text = lm.decode(new)
            if not text.endswith("\ufffd"):  # wait for a whole UTF-8 character
                sys.stdout.write(text[len(shown):])
                shown = text
        else:
            sys.stdout.write(("" if n == 1 else ",") + str(tok))
        sys.stdout.flush()
    sys.stdout.write("\n")
    if as_json:
        import json

        sys.stdout.write(json.dumps({"tokens": new}) + "\n")
    sys.stdout.flush()
    end = time.perf_counter()
    if n:
        rate = (n - 1) / (end - first) if n > 1 and end > first else float("nan")
        print(f"[{len(ids)} prompt tokens in {first - t0:.3f} s, {n} new tokens, {rate:.1f} tok/s]", file=sys.stderr)


def _generate_seq2seq(out: Path, ids, prompt, max_tokens: int, num_beams, as_json: bool) -> None:
    """Encoder-decoder output: the prompt is the encoder input; prints the generated ids (after the decoder
    start token, up to and including the end-of-sequence token)."""
    import json

    from ..api import load
    from ..compiler.errors import Fx2MlxError

    if prompt is not None:
        raise Fx2MlxError("this is an encoder-decoder model: pass --prompt-ids (text: fx2mlx translate OUT --text ...)")
    program = load(out)
    t0 = time.perf_counter()
    row = program.generate([ids], max_new_tokens=max_tokens, num_beams=num_beams)[0]
    tokens = program.new_tokens(row)
    if as_json:
        print(json.dumps({"tokens": tokens}))
    else:
        print(",".join(map(str, tokens)))
    print(f"[{len(ids)} prompt tokens, {len(tokens)} new tokens in {time.perf_counter() - t0:.3f} s]", file=sys.stderr)
