"""Forward latency and throughput of fx2mlx-compiled models vs PyTorch eager and torch.compile, on the same
weights (random init from a transformers config, fixed seed), at batch 1 and a serving batch.

    python bench/models.py --quick --no-torch-compile                 # tiny configs: a CPU smoke run
    python bench/models.py --device cuda --dtype bfloat16             # the GPU figures (MLX CUDA backend)
    python bench/models.py --models bert-base,vit-base --runs 50 --json out.json

Systems, per model and batch (the same inputs, each already on its device):
  fx2mlx          the emitted model.py as `load()` returns it: forward under mx.compile (the default)
  fx2mlx-eager    the same model.py loaded with compile=False (so the table shows what mx.compile brings)
  torch-eager     the PyTorch module under torch.inference_mode()
  torch-compile   torch.compile(module) (mode: --torch-compile-mode, default "default"; a fresh compile
                  per batch size, dynamic=False); --no-torch-compile skips it
Each system runs --warmup calls, then the systems take turns --runs times (one call each per round, so a
busy machine slows all alike); the median counts. MLX calls end with mx.eval of every output, CUDA calls
with torch.cuda.synchronize(). Ratios are speedups of fx2mlx: reference ms / fx2mlx ms (>1: fx2mlx faster).
`err` is max |fx2mlx - torch eager| over the first output, relative to max |torch eager|.
On --device cuda, MLX runs on its default device (the GPU: CUDA backend); with float32, PyTorch is allowed
TF32 matmuls/convolutions as MLX's CUDA backend uses them by default.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FAMILY = "models"  # bench/all.py convention: FAMILY, --json/--quick/--device/--dtype (see bench/all.py)


@dataclass
class Spec:
    name: str
    what: str
    build: Callable  # (quick) -> torch.nn.Module, random init
    inputs: Callable  # (module, batch, quick, generator) -> {name: tensor}, float inputs in float32
    batches: tuple  # (batch 1, serving batch)
    quick_batches: tuple = (1, 2)


def _bert(quick):
    from transformers import BertConfig, BertModel

    cfg = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                     vocab_size=1000) if quick else BertConfig()  # defaults: bert-base-uncased
    return BertModel(cfg, add_pooling_layer=False)


def _text_inputs(m, batch, quick, g):
    import torch

    seq = 16 if quick else 128
    ids = torch.randint(0, m.config.vocab_size, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    if batch > 1:
        mask[-1, seq * 3 // 4:] = 0  # a padded row
    return {"input_ids": ids, "attention_mask": mask}


def _vit(quick):
    from transformers import ViTConfig, ViTModel

    cfg = ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                    image_size=32, patch_size=8) if quick else ViTConfig()  # defaults: vit-base-patch16-224
    return ViTModel(cfg, add_pooling_layer=False)


def _image_inputs(m, batch, quick, g):
    import torch

    size = m.config.image_size
    return {"pixel_values": torch.randn(batch, 3, size, size, generator=g)}


def _resnet(quick):
    from transformers import ResNetConfig, ResNetModel

    cfg = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1]) if quick \
        else ResNetConfig()  # defaults: resnet-50
    m = ResNetModel(cfg)
    m.config.image_size = 32 if quick else 224
    return m


def _convnext(quick):
    from transformers import ConvNextConfig, ConvNextModel

    cfg = ConvNextConfig(hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1]) if quick \
        else ConvNextConfig()  # defaults: convnext-tiny-224
    m = ConvNextModel(cfg)
    m.config.image_size = 32 if quick else 224
    return m


def _wav2vec2(quick):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                         conv_dim=(32,) * 7, num_conv_pos_embeddings=16) if quick else Wav2Vec2Config()  # base
    return Wav2Vec2Model(cfg)


def _wave_inputs(m, batch, quick, g):
    import torch

    return {"input_values": torch.randn(batch, 4000 if quick else 16000, generator=g)}  # 0.25 s / 1 s at 16 kHz


def _whisper_encoder(quick):
    from transformers import WhisperConfig, WhisperModel

    if quick:
        cfg = WhisperConfig(d_model=64, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=16,
                            max_source_positions=50)
    else:  # whisper-base
        cfg = WhisperConfig(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                            decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048)
    return WhisperModel(cfg).encoder


def _mel_inputs(m, batch, quick, g):
    import torch

    c = m.config  # the encoder needs exactly 2 * max_source_positions frames (30 s for the real sizes)
    return {"input_features": torch.randn(batch, c.num_mel_bins, 2 * c.max_source_positions, generator=g)}


def _hifigan(quick):
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    cfg = SpeechT5HifiGanConfig(upsample_initial_channel=32, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
                                resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3], [1, 3]]) if quick \
        else SpeechT5HifiGanConfig()  # SpeechT5's vocoder: 256x upsampling, 512 channels
    m = SpeechT5HifiGan(cfg)
    with __import__("torch").no_grad():  # random mean/scale buffers (they start as 0 / 1)
        m.mean.normal_(0, 0.1)
        m.scale.uniform_(0.5, 1.5)
    return m


def _spec_inputs(m, batch, quick, g):
    import torch

    return {"spectrogram": torch.randn(batch, 32 if quick else 200, m.config.model_in_dim, generator=g)}


SPECS = {s.name: s for s in [
    Spec("bert-base", "BERT-base encoder, seq 128", _bert, _text_inputs, (1, 32)),
    Spec("vit-base", "ViT-B/16, 224x224", _vit, _image_inputs, (1, 32)),
    Spec("resnet-50", "ResNet-50, 224x224", _resnet, _image_inputs, (1, 32)),
    Spec("convnext-tiny", "ConvNeXt-T, 224x224", _convnext, _image_inputs, (1, 32)),
    Spec("wav2vec2-base", "wav2vec2-base encoder, 1 s of 16 kHz audio", _wav2vec2, _wave_inputs, (1, 8)),
    Spec("whisper-base-encoder", "Whisper-base encoder, 30 s of log-mel", _whisper_encoder, _mel_inputs, (1, 8)),
    Spec("hifigan", "SpeechT5 HiFi-GAN vocoder, 200 frames -> 51200 samples", _hifigan, _spec_inputs, (1, 8)),
]}


def leaves(v):
    if isinstance(v, dict):
        return [x for k in v for x in leaves(v[k])]
    if isinstance(v, (list, tuple)):
        return [x for i in v for x in leaves(i)]
    if hasattr(v, "to_tuple"):  # a transformers ModelOutput
        return leaves(v.to_tuple())
    return [v]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(SPECS), help=f"comma-separated, of: {', '.join(SPECS)}")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batches", help="comma-separated batch sizes for every model (default: per model)")
    p.add_argument("--quick", action="store_true", help="tiny configs and shapes (a CPU smoke run)")
    p.add_argument("--runs", type=int, default=None, help="timed calls per system (default 20, quick 5)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-torch-compile", action="store_true")
    p.add_argument("--torch-compile-mode", default="default",
                   help='torch.compile mode ("default", "max-autotune-no-cudagraphs", "reduce-overhead", ...)')
    p.add_argument("--no-eager-mlx", action="store_true", help="skip the uncompiled fx2mlx row")
    p.add_argument("--json", type=Path, help="write the results here (bench/all.py's format)")
    args = p.parse_args(argv)
    runs = args.runs or (5 if args.quick else 20)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        p.error(f"unknown models {unknown}; known: {', '.join(SPECS)}")

    from fx2mlx import blas

    blas_note = blas.use_optimized_blas() if args.device == "cpu" else None
    import mlx.core as mx
    import torch

    import fx2mlx

    if args.device == "cpu":
        mx.set_default_device(mx.cpu)
    elif args.dtype == "float32":
        torch.backends.cuda.matmul.allow_tf32 = True  # MLX's CUDA backend runs float32 on TF32 by default
        torch.backends.cudnn.allow_tf32 = True
    tdtype, mdtype = getattr(torch, args.dtype), getattr(mx, args.dtype)
    dev = torch.device(args.device)
    print(f"mlx {mx.__version__} on {mx.default_device()}; torch {torch.__version__} on {dev}; {args.dtype}; "
          f"BLAS {blas_note or '-'}; median of {runs} runs after {args.warmup} warm-up calls; "
          f"torch.compile mode {'off' if args.no_torch_compile else args.torch_compile_mode}")

    def sync_torch(out):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return out

    def sync_mlx(out):
        mx.eval([x for x in leaves(out) if isinstance(x, mx.array)])
        return out

    rows, table = [], []
    work = Path(tempfile.mkdtemp(prefix="fx2mlx-bench-models-"))
    for name in names:
        spec = SPECS[name]
        torch.manual_seed(0)
        module = spec.build(args.quick).eval()
        g = torch.Generator().manual_seed(0)
        example = spec.inputs(module, 2, args.quick, g)  # batch 2: the batch axis stays dynamic
        t0 = time.perf_counter()
        try:
            compiled = fx2mlx.convert(module, (), example, dtype=None if args.dtype == "float32" else args.dtype,
                                      out_dir=work / name, force=True)
        except Exception as e:  # noqa: BLE001 - one model failing to compile is a result, not the end
            print(f"{name}: fx2mlx could not compile it: {type(e).__name__}: {str(e).splitlines()[0]}")
            rows.append({"name": name, "error": f"{type(e).__name__}: {str(e).splitlines()[0]}"})
            continue
        t_compile = time.perf_counter() - t0
        ours = compiled.model
        eager_mlx = None if args.no_eager_mlx else fx2mlx.load(compiled.out_dir, compile=False).model
        tmod = module.to(dev, tdtype)
        batches = [int(b) for b in args.batches.split(",")] if args.batches else \
            (spec.quick_batches if args.quick else spec.batches)
        for batch in batches:
            ins = spec.inputs(module, batch, args.quick, torch.Generator().manual_seed(batch))
            tins = {k: (v.to(dev, tdtype) if v.is_floating_point() else v.to(dev)) for k, v in ins.items()}
            mins = [mx.array(v.float().numpy()).astype(mdtype) if v.is_floating_point() else mx.array(v.numpy())
                    for v in (ins[n] for n in compiled.input_names)]
            systems = {"fx2mlx": lambda: sync_mlx(ours(*mins))}
            if eager_mlx is not None:
                systems["fx2mlx-eager"] = lambda: sync_mlx(eager_mlx(*mins))

            def t_eager():
                with torch.inference_mode():
                    return sync_torch(tmod(**tins))

            systems["torch-eager"] = t_eager
            tc_note = ""
            if not args.no_torch_compile:
                torch._dynamo.reset()
                cmod = torch.compile(tmod, mode=args.torch_compile_mode, dynamic=False)

                def t_compiled(cmod=cmod):
                    with torch.inference_mode():
                        return sync_torch(cmod(**tins))

                t1 = time.perf_counter()
                try:
                    t_compiled()
                    systems["torch-compile"] = t_compiled
                    tc_note = f"{time.perf_counter() - t1:.0f}s"
                except Exception as e:  # noqa: BLE001
                    print(f"  torch.compile failed on {name}: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            ref_out = leaves(systems["torch-eager"]())[0].float().cpu().numpy()
            got = leaves(systems["fx2mlx"]())[0]
            import numpy as np

            got = np.array(got.astype(mx.float32))
            err = float(np.abs(got - ref_out).max() / max(np.abs(ref_out).max(), 1e-12)) if got.shape == ref_out.shape \
                else float("nan")
            for fn in systems.values():
                for _ in range(args.warmup):
                    fn()
            times = {k: [] for k in systems}
            for _ in range(runs):
                for k, fn in systems.items():
                    t = time.perf_counter()
                    fn()
                    times[k].append((time.perf_counter() - t) * 1e3)
            ms = {k: statistics.median(v) for k, v in times.items()}
            shape = "x".join(str(s) for s in next(iter(ins.values())).shape)
            row = {"name": f"{name} b{batch}", "model": name, "batch": batch, "input_shape": shape,
                   "ours_ms": ms["fx2mlx"], "ours_items_s": batch / ms["fx2mlx"] * 1e3,
                   "ref": {k: v for k, v in ms.items() if k != "fx2mlx"},
                   "ratio": {k: v / ms["fx2mlx"] for k, v in ms.items() if k != "fx2mlx"},
                   "rel_err": err, "fx2mlx_compile_s": t_compile, "torch_compile_s": tc_note}
            rows.append(row)
            table.append(row)
            print(f"{row['name']:26s} {shape:>16s} " + "  ".join(f"{k} {v:8.2f} ms" for k, v in ms.items())
                  + f"  err {err:.1e}", flush=True)
        del tmod, module

    syscols = ["fx2mlx", "fx2mlx-eager", "torch-eager", "torch-compile"]
    print(f"\n{'model':26s} {'input':>16s} " + " ".join(f"{c:>13s}" for c in syscols)
          + f" {'items/s':>9s} {'vs eager':>8s} {'vs t.comp':>9s} {'mx.comp':>7s} {'err':>7s}")
    for r in table:
        ms = {"fx2mlx": r["ours_ms"], **r["ref"]}
        cells = [f"{ms[c]:10.2f} ms" if c in ms else f"{'-':>13s}" for c in syscols]
        rat = lambda k: f"{r['ratio'][k]:.2f}x" if k in r["ratio"] else "-"  # noqa: E731
        print(f"{r['name']:26s} {r['input_shape']:>16s} " + " ".join(cells) + f" {r['ours_items_s']:9.1f}"
              f" {rat('torch-eager'):>8s} {rat('torch-compile'):>9s} {rat('fx2mlx-eager'):>7s} {r['rel_err']:7.1e}")
    print("ratios: reference ms / fx2mlx ms (>1: fx2mlx faster); mx.comp: uncompiled / compiled fx2mlx")
    if args.json:
        args.json.write_text(json.dumps({
            "family": FAMILY, "unit": "ms", "higher_is_better": False, "device": args.device, "dtype": args.dtype,
            "mlx_device": str(mx.default_device()), "quick": args.quick, "runs": runs,
            "torch_compile_mode": None if args.no_torch_compile else args.torch_compile_mode, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
