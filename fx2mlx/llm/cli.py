"""`fx2mlx generate`: stream tokens from a compiled decoder LLM (text when OUT has a tokenizer).

`fx2mlx compile` hands Hugging Face `*ForCausalLM` directories to the causal-lm recipe (`fx2mlx.recipes.causal_lm`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)
    from .transcribe_cli import transcribe_cmd
    from .translate_cli import translate_cmd

    app.command("translate")(translate_cmd)
    app.command("transcribe")(transcribe_cmd)


def generate_cmd(
    out: Path = typer.Argument(..., help="A folder compiled from a causal LM (fx2mlx compile LLAMA_DIR -o OUT)."),
    prompt: Optional[List[str]] = typer.Option(None, "--prompt", help="Prompt text (needs tokenizer.json in OUT); "
                                               "repeat it for a batch: --prompt A --prompt B."),
    prompt_ids: Optional[List[str]] = typer.Option(None, "--prompt-ids", help="Prompt token ids, e.g. 1,2,3; "
                                                   "repeat it for a batch."),
    max_tokens: int = typer.Option(64, "--max-tokens", help="How many new tokens at most."),
    temp: float = typer.Option(0.0, "--temp", help="Sampling temperature (0: greedy)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling: keep the top tokens up to this mass."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed for sampling."),
    ignore_eos: bool = typer.Option(False, "--ignore-eos", help="Do not stop at the end-of-sequence token."),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", help="Encoder-decoder models: beam search with "
                                            "this many beams (default: the model's generation config)."),
    as_json: bool = typer.Option(False, "--json", help='Print {"tokens": [...]} (the new token ids) at the end '
                                 '(a batch: one list per prompt).'),
    shards: Optional[int] = typer.Option(None, "--shards", help="Run tensor-parallel over this many local processes "
                                         "(mlx.launch, ring backend); OUT must be compiled with --shards N."),
):
    """Generate from OUT: prints tokens as they come (text, or ids without a tokenizer). Several prompts
    run as one batch (left-padded, each stopping at its own end of sequence) and print one line per
    prompt when all are done. For an encoder-decoder model (recipe seq2seq) the prompt is the encoder
    input and the output the decoder's tokens (greedy or beam search, HF generate's semantics)."""
    from .. import blas
    from ..compiler.errors import Fx2MlxError

    blas.use_optimized_blas()
    from .api import load_llm

    if bool(prompt) == bool(prompt_ids):
        raise Fx2MlxError("pass exactly one of --prompt TEXT or --prompt-ids 1,2,3 (repeat it for a batch)")
    ids = None
    if prompt_ids:
        ids = [_parse_ids(p) for p in prompt_ids]
    from ..manifest import read_manifest

    if read_manifest(out).get("recipe") == "speech-to-text":
        raise Fx2MlxError(f"{out} is a speech-to-text model: use fx2mlx transcribe OUT AUDIO")
    if read_manifest(out).get("recipe") == "seq2seq":
        if len(prompt_ids or prompt) > 1:
            raise Fx2MlxError("encoder-decoder models take one --prompt-ids here (a batch: fx2mlx translate)")
        return _generate_seq2seq(out, ids[0] if ids else None, prompt[0] if prompt else None, max_tokens, num_beams,
                                 as_json)
    if num_beams is not None:
        raise Fx2MlxError("--num-beams applies to encoder-decoder models (recipe seq2seq); causal LMs generate "
                          "greedily or by sampling (--temp, --top-p)")
    lm = load_llm(out)
    lm.check_sampling(max_tokens, temp, top_p)
    if shards is not None:
        if len(prompt or ids) > 1:
            raise Fx2MlxError("--shards runs one prompt at a time: pass one --prompt (batched sharded generation "
                              "is not supported yet)")
        return _generate_sharded(lm, out, shards, ids[0] if ids else None, prompt[0] if prompt else None,
                                 max_tokens, temp, top_p, seed, ignore_eos, as_json)
    if prompt and lm.tokenizer is None:
        raise Fx2MlxError(f"{out} has no tokenizer.json: pass --prompt-ids 1,2,3 instead of --prompt")
    if len(prompt or ids) > 1:
        rows = [lm.encode(p) for p in prompt] if prompt else lm.check_batch(ids)
        return _generate_batch(lm, rows, max_tokens, temp, top_p, seed, ignore_eos, as_json)
    ids = lm.encode(prompt[0]) if prompt else lm.check_prompt(ids[0])
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


def _generate_sharded(lm, out: Path, shards: int, ids, prompt, max_tokens, temp, top_p, seed, ignore_eos,
                      as_json: bool) -> None:
    """The tokens of a tensor-parallel run over `shards` local processes (fx2mlx.llm.shard), printed at the end."""
    import json

    from ..compiler.errors import Fx2MlxError
    from .shard import launch

    if prompt is not None and lm.tokenizer is None:
        raise Fx2MlxError(f"{out} has no tokenizer.json: pass --prompt-ids 1,2,3 instead of --prompt")
    ids = lm.encode(prompt) if prompt is not None else lm.check_prompt(ids)
    t0 = time.perf_counter()
    tokens = launch(out, shards, ids, max_tokens=max_tokens, temp=temp, top_p=top_p, seed=seed,
                    ignore_eos=ignore_eos)
    print(lm.decode(tokens) if lm.tokenizer is not None else ",".join(map(str, tokens)))
    if as_json:
        print(json.dumps({"tokens": tokens}))
    print(f"[{len(ids)} prompt tokens, {len(tokens)} new tokens on {shards} processes in "
          f"{time.perf_counter() - t0:.3f} s, launch included]", file=sys.stderr)


def _parse_ids(text: str) -> list[int]:
    from ..compiler.errors import Fx2MlxError

    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise Fx2MlxError(f"--prompt-ids must be comma-separated integers, got {text!r}") from None


def _generate_batch(lm, rows, max_tokens, temp, top_p, seed, ignore_eos, as_json) -> None:
    """Several prompts as one batch: one line per prompt (text, or ids without a tokenizer) at the end."""
    import json

    t0 = time.perf_counter()
    out: list[list[int]] = [[] for _ in rows]
    first = None
    for tokens in lm.stream_batch(rows, max_tokens=max_tokens, temp=temp, top_p=top_p, seed=seed,
                                  stop_at_eos=not ignore_eos):
        first = first or time.perf_counter()
        for row, t in zip(out, tokens):
            if t is not None:
                row.append(t)
    for i, row in enumerate(out):
        body = lm.decode(row) if lm.tokenizer is not None else ",".join(map(str, row))
        sys.stdout.write(f"[{i}] {body}\n")
    if as_json:
        sys.stdout.write(json.dumps({"tokens": out}) + "\n")
    sys.stdout.flush()
    end = time.perf_counter()
    n = sum(map(len, out))
    steps = max(map(len, out), default=0)
    rate = (n - len(rows)) / (end - first) if first and steps > 1 and end > first else float("nan")
    print(f"[batch {len(rows)}: {sum(map(len, rows))} prompt tokens in {(first or end) - t0:.3f} s, {n} new tokens, "
          f"{rate:.1f} tok/s]", file=sys.stderr)


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
