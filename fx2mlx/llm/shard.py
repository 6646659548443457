"""Tensor parallelism over processes (mx.distributed), as mlx-lm's sharded models do.

Compile time (`fx2mlx compile LLM_DIR -o OUT --shards N`): the causal LM is captured a second time from
its config with the attention heads, KV heads and MLP width divided by N (head size kept): one rank's
share of every block, on the meta device (no weights). Comparing that graph's weight shapes with the
full model's gives, per weight, the axis it is split on: q/k/v/gate/up rows ("all-to-sharded"),
o_proj/down columns ("sharded-to-all"); everything else (embeddings, norms, the LM head, RoPE) is
replicated. A linear whose input features are split produces a partial sum: `fx2mlx.all_sum` after it
(`mx.distributed.all_sum`) — one per attention block and one per MLP block — and its bias, if any, is
divided by N at load so that the sum adds it once. The rank graph goes to `OUT/tp<N>/model.py` (no
weights of its own); `manifest.json["llm"]["shards"]` records N and the split axes.

Run time (`fx2mlx generate OUT --shards N`): `mlx.launch --backend ring -n N` on this host starts N
processes of `python -m fx2mlx.llm.shard OUT ...`; each joins the ring group, slices its share from
OUT/weights.safetensors, and runs the same generation loop; rank 0 prints the tokens. Greedy tokens
equal the single-process run (tests/test_shard.py). Mixture-of-experts blocks split every expert's width
(the stacked `gate_up_proj` per half, `down_proj` by input columns, one all_sum after the experts' down
projection), routers stay whole. Not yet: expert parallelism (whole experts per rank), quantized weights
(packed columns), pipeline splitting (ARCHITECTURE.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HEAD_ATTRS = ("num_attention_heads", "num_key_value_heads")
ROW_OPS = {"aten.linear.default": "weight", "fx2mlx.gather_linear.default": "weight"}  # weight (..., out, in)


def split_attrs(config) -> list[str]:
    """The config sizes one rank divides: heads, KV heads, and every MLP width (`*intermediate_size`:
    dense, experts', shared expert's)."""
    return list(HEAD_ATTRS) + sorted(a for a, v in vars(config).items()
                                     if a.endswith("intermediate_size") and isinstance(v, int) and v > 0)


# --------------------------------------------------------------------------------------------------
# Compile time (torch)
# --------------------------------------------------------------------------------------------------
def check_shards(shards, config, quantize) -> None:
    from ..compiler.errors import SourceError

    if shards is None:
        return
    if not isinstance(shards, int) or shards < 2:
        raise SourceError(f"--shards takes a number of processes >= 2, got {shards}")
    if quantize:
        raise SourceError("--shards with --quantize is not supported yet (quantized weights pack the columns "
                          "that the output projections would split); compile float weights for sharding")
    for a in split_attrs(config):
        v = getattr(config, a, None)
        if not isinstance(v, int) or v % shards:
            raise SourceError(f"--shards {shards}: config.{a} = {v} does not split into {shards} equal parts")


def sharded_config(config, shards: int):
    import copy

    cfg = copy.deepcopy(config)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    cfg.head_dim = head_dim
    for a in split_attrs(config):
        setattr(cfg, a, getattr(config, a) // shards)
    return cfg


def shard_program(program, full: dict[str, tuple], shards: int):
    """(program with all_sum after every row-parallel linear, {weight target: [split axis, blocks]},
    [biases to divide by N]). `full`: the single-process weight shapes by state_dict name. blocks > 1: the
    output is cut into that many equal parts (a fused gate/up projection, seen as `split` of its output),
    and each part is split across the ranks."""
    from dataclasses import replace

    from ..compiler import ir
    from ..compiler.errors import SourceError

    split: dict[str, int] = {}
    for i in program.weight_inputs:
        want = tuple(full.get(i.target, ()))
        have = tuple(i.type.shape)
        if want == have:
            continue
        axes = [k for k, (a, b) in enumerate(zip(want, have)) if a != b]
        if len(want) != len(have) or len(axes) != 1 or want[axes[0]] != have[axes[0]] * shards:
            raise SourceError(f"--shards: cannot split {i.target}: full shape {want}, one rank's {have}")
        split[i.target] = [axes[0], 1]
    targets = {i.name: i.target for i in program.weight_inputs}
    wrank = {i.name: i.type.rank for i in program.weight_inputs}
    for n, parts in _fused_outputs(program).items():
        w = n.arg("weight")
        if targets.get(w.name) in split and split[targets[w.name]][0] == wrank[w.name] - 2:
            split[targets[w.name]][1] = parts
    nodes, scale, renamed = [], [], {}
    for n in program.nodes:
        n = replace(n, args=tuple((k, ir.map_refs(v, lambda r: ir.Ref(renamed.get(r.name, r.name)))) for k, v in n.args))
        nodes.append(n)
        w = n.arg(ROW_OPS[n.target]) if n.target in ROW_OPS else None
        axis = split.get(targets.get(w.name), [None])[0] if isinstance(w, ir.Ref) else None
        if axis is not None and axis == wrank[w.name] - 1:  # input features split: partial sums
            b = n.arg("bias", None)
            if isinstance(b, ir.Ref) and b.name in targets:
                scale.append(targets[b.name])
            leaf = n.stack and n.stack[-1].type_name.endswith("Linear")  # the sum goes in the block's own code
            total = ir.Node(f"{n.name}_sum", "fx2mlx.all_sum.default", (("x", ir.Ref(n.name)),), n.type,
                            n.stack[:-1] if leaf else n.stack, n.source)
            nodes.append(total)
            renamed[n.name] = total.name
    outputs = tuple(ir.map_refs(o, lambda r: ir.Ref(renamed.get(r.name, r.name))) for o in program.outputs)
    if not renamed:
        raise SourceError("--shards: no linear layer splits its input features; nothing to run in parallel")
    return program.replace_nodes(tuple(nodes), outputs), split, scale


def _fused_outputs(program) -> dict:
    """Linear-like nodes whose output is only cut into equal parts along its last axis -> the part count."""
    users: dict[str, list] = {}
    for n in program.nodes:
        for r in n.refs():
            users.setdefault(r.name, []).append(n)
    out = {}
    for n in program.nodes:
        if n.target not in ROW_OPS or len(users.get(n.name, [])) != 1:
            continue
        u = users[n.name][0]
        sizes = u.arg("split_sizes", None) if u.target == "aten.split_with_sizes.default" else None
        if sizes and len(set(sizes)) == 1 and len(sizes) > 1 and u.arg("dim") in (-1, n.type.rank - 1):
            out[n] = len(sizes)
    return out


def write_sharded(captured, config, shards: int, folder: Path, dtype: str | None, description: str) -> dict:
    """Capture one rank's graph and emit it into folder (model.py, ir.json); -> the manifest entry."""
    from ..compiler.emit_py import PyEmitter
    from ..compiler.lowering import lower
    from ..recipes.causal_lm import build_meta_model, capture_llm, llm_program

    full = {i.target: tuple(i.type.shape) for i in captured.program.weight_inputs}
    rank = capture_llm(build_meta_model(sharded_config(config, shards)), description)
    program, split, scale = shard_program(llm_program(rank), full, shards)
    lowered = lower(program, dtype=dtype)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(PyEmitter(lowered, dtype=dtype, source=description).render())
    (folder / "ir.json").write_text(lowered.program.to_json())
    return {"n": shards, "dir": folder.name, "split": split, "divide": scale,
            "all_sums": sum(n.target == "fx2mlx.all_sum.default" for n in program.nodes)}


# --------------------------------------------------------------------------------------------------
# Launch: N processes on this host over the ring backend
# --------------------------------------------------------------------------------------------------
def _free_ports(count: int) -> int:
    """A port p such that p .. p + count - 1 are free on the loopback interface now."""
    import random
    import socket

    for _ in range(200):
        p = random.randint(20000, 60000)
        socks = []
        try:
            for k in range(count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p + k))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError("no free loopback ports for the ring backend")


def launch(out: Path, shards: int, prompt: list[int], *, max_tokens: int = 64, temp: float = 0.0,
           top_p: float = 1.0, seed: int | None = None, ignore_eos: bool = False, timeout: float = 600) -> list[int]:
    """Run `python -m fx2mlx.llm.shard` on `shards` local processes (mlx.launch, ring backend) -> tokens."""
    import os
    import shutil
    import subprocess

    from ..compiler.errors import ArgumentError, SourceError

    manifest = json.loads((Path(out) / "manifest.json").read_text())
    info = (manifest.get("llm") or {}).get("shards")
    if not info or info["n"] != shards:
        have = f"compiled for --shards {info['n']}" if info else "compiled without --shards"
        raise ArgumentError(f"{out} is {have}: recompile with fx2mlx compile SRC -o OUT --shards {shards}")
    exe = Path(sys.executable).parent / "mlx.launch"
    launcher = [str(exe)] if exe.is_file() else ([shutil.which("mlx.launch")] if shutil.which("mlx.launch") else None)
    if launcher is None:
        raise SourceError("mlx.launch was not found next to this Python nor on PATH (pip install mlx)")
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the fx2mlx package
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    cmd = launcher + ["--backend", "ring", "-n", str(shards), "--starting-port", str(_free_ports(shards)), "--",
                      sys.executable, "-m", "fx2mlx.llm.shard", str(Path(out).resolve()),
                      "--prompt-ids", ",".join(map(str, prompt)), "--max-tokens", str(max_tokens),
                      "--temp", str(temp), "--top-p", str(top_p), "--seed", str(seed or 0)]
    if ignore_eos:
        cmd.append("--ignore-eos")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith('{"tokens"')]
    if r.returncode != 0 or not lines:
        tail = (r.stderr.strip() or r.stdout.strip()).splitlines()[-3:]
        raise SourceError(f"the {shards} processes failed (exit {r.returncode}): " + " | ".join(tail))
    return json.loads(lines[-1])["tokens"]


# --------------------------------------------------------------------------------------------------
# Run time (mlx only): one rank of `fx2mlx generate OUT --shards N`
# --------------------------------------------------------------------------------------------------
def rank_weights(out: Path, info: dict, rank: int, n: int, dtype=None) -> dict:
    """This rank's share of OUT/weights.safetensors: split weights sliced, split-input biases / n."""
    import mlx.core as mx

    weights = mx.load(str(Path(out) / "weights.safetensors"))
    for name, (axis, blocks) in info["split"].items():
        w = weights[name]
        if w.shape[axis] % (n * blocks):
            raise ValueError(f"{name}: axis {axis} of {tuple(w.shape)} does not split into {n} x {blocks}")
        parts = [mx.split(b, n, axis=axis)[rank] for b in mx.split(w, blocks, axis=axis)]
        weights[name] = parts[0] if blocks == 1 else mx.concatenate(parts, axis=axis)
    for name in info["divide"]:
        weights[name] = weights[name] / n
    return weights


def load_rank(out: Path, group):
    """This rank's model: OUT/tp<N>/model.py with its share of the weights."""
    import tempfile

    import mlx.core as mx

    from ..api import load_module

    manifest = json.loads((Path(out) / "manifest.json").read_text())
    info = (manifest.get("llm") or {}).get("shards")
    if not info or info["n"] != group.size():
        have = f"compiled for {info['n']} processes" if info else "compiled without --shards"
        raise SystemExit(f"error: {out} is {have}; this run has {group.size()} (fx2mlx compile SRC -o OUT "
                         f"--shards {group.size()})")
    gdir = Path(out) / manifest["graphs"][manifest["entry"]]["dir"]
    module = load_module(Path(out) / info["dir"] / "model.py")
    weights = rank_weights(gdir, info, group.rank(), group.size())
    with tempfile.TemporaryDirectory() as tmp:  # model.py's own loader checks every name and shape
        mx.save_safetensors(str(Path(tmp) / "weights.safetensors"), weights)
        del weights
        return module.load(tmp), manifest


def worker(argv=None) -> int:
    import mlx.core as mx

    from ..runtime.generate import generate_tokens
    from ..runtime.sampling import sample_token

    p = argparse.ArgumentParser(description="one rank of fx2mlx generate OUT --shards N (started by mlx.launch)")
    p.add_argument("out", type=Path)
    p.add_argument("--prompt-ids", required=True)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--temp", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ignore-eos", action="store_true")
    a = p.parse_args(argv)
    group = mx.distributed.init(strict=True)
    model, manifest = load_rank(a.out, group)
    eos = () if a.ignore_eos else tuple(manifest.get("llm", {}).get("eos_token_id") or ())
    mx.random.seed(a.seed)  # every rank draws the same token
    cache = []
    ids = mx.array([int(x) for x in a.prompt_ids.split(",") if x], dtype=mx.int32)
    tokens = list(generate_tokens(lambda t: model(t, cache=cache), ids, a.max_tokens,
                                  lambda logits: sample_token(logits, a.temp, a.top_p), eos))
    if group.rank() == 0:
        print(json.dumps({"tokens": tokens, "shards": group.size()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(worker())
