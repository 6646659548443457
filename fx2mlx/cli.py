"""The `fx2mlx` command line (alias `pytorch-to-mlx`).

Every fx2mlx error is printed as one message (no traceback) with a documented non-zero exit code
(docs/errors.md); an unexpected exception prints a one-line summary and the file its trace was written to.
`--verbose` (anywhere on the command line) lets torch's and transformers' own logging through;
FX2MLX_DEBUG=1 raises instead of printing.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .compiler.errors import Fx2MlxError, InternalError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compile PyTorch models into standalone MLX code, checked layer by layer against PyTorch.")
console = Console(stderr=True)
_DEBUG = os.environ.get("FX2MLX_DEBUG") == "1"

SOURCE_HELP = ("A Hugging Face model directory (config.json + safetensors), a factory 'path/to/file.py:function' "
               "or 'package.module:function' returning (module, args[, kwargs]) or a program ({name: (module, args)}), "
               "an ONNX file (.onnx) or a TorchScript archive (.pt, .pth, .jit; needs --trust-torchscript).")


def _progress():
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                    transient=True, disable=not console.is_terminal)


@app.callback()
def _global_options(
    verbose: bool = typer.Option(False, "--verbose", help="Show torch's and transformers' own logging (kept out of "
                                 "the terminal otherwise). Accepted anywhere on the command line."),
):
    """Compile PyTorch models into standalone MLX code, checked layer by layer against PyTorch."""


@app.command("compile")
def compile_cmd(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory (must be empty unless --force)."),
    dtype: str = typer.Option("float32", help="Weight and compute dtype: float32, float16 or bfloat16."),
    inputs: Optional[Path] = typer.Option(None, help="safetensors file of example inputs (input_0.. or names)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output directory."),
    check: bool = typer.Option(False, "--check", help="Run the golden harness after compiling."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="graph, program, causal-lm or seq2seq (default: from the "
                                         "source; HF directories from config.json)."),
    dynamic: Optional[list[str]] = typer.Option(None, "--dynamic", help="An axis that must be dynamic, NAME:DIM "
                                                "(repeat), e.g. input_ids:1. Every axis is dynamic by default "
                                                "where the model allows it; this makes it an error if not."),
    static: bool = typer.Option(False, "--static", help="Freeze every dimension at the example's size."),
    quantize: Optional[int] = typer.Option(None, "--quantize", help="Causal LMs, seq2seq: quantize linears to 4 or 8 bits."),
    group_size: int = typer.Option(64, "--group-size", help="With --quantize: group size (32, 64 or 128)."),
    shards: Optional[int] = typer.Option(None, "--shards", help="Causal LMs: also emit OUT/tpN/model.py, one rank of a "
                                         "tensor-parallel run over N processes (fx2mlx generate OUT --shards N)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Load pickled checkpoints (*.bin, *.pt) of a Hugging "
                                      "Face directory that has no safetensors, with torch.load(weights_only=True). "
                                      "Off by default: prefer safetensors."),
    input_shape: Optional[list[str]] = typer.Option(None, "--input-shape", help="ONNX/TorchScript files: the example "
                                                    "size of an input, NAME=AxBxC (repeat), e.g. x=1x3x224."),
    trust_torchscript: bool = typer.Option(False, "--trust-torchscript", help="Load a TorchScript archive: this compiles "
                                           "and runs the code inside the file, so only for files you trust."),
    target: str = typer.Option("python", "--target", help="python, cpp or python,cpp: cpp also writes OUT/cpp/ "
                               "(an MLX C++ program; build it with `fx2mlx build OUT`). model.py is always written."),
):
    """Compile SOURCE into OUT (model.py + weights.safetensors + ir.json + manifest.json per graph)."""
    from .compiler.errors import SourceError
    from .compiler.shapes import summary
    from .cpp.cli import parse_targets
    from .recipes import Options, compile_source

    targets = parse_targets(target)
    if static and dynamic:
        raise Fx2MlxError("--static freezes every dimension: it cannot be combined with --dynamic")
    from .sources import file_kind, parse_shapes

    if (input_shape or trust_torchscript) and not file_kind(source):
        raise SourceError("--input-shape and --trust-torchscript apply to ONNX files and TorchScript archives")
    options = Options(dtype=dtype, shapes="static" if static else "auto", dynamic=dynamic,
                      inputs=str(inputs) if inputs else None, quantize=quantize, group_size=group_size,
                      allow_pickle=allow_pickle, shards=shards, input_shapes=parse_shapes(input_shape),
                      trust_torchscript=trust_torchscript)
    if inputs is not None and not inputs.is_file():
        raise SourceError(f"inputs file not found: {inputs}")
    with _progress() as progress:
        task = progress.add_task("compiling", total=None)
        r, graphs, manifest = compile_source(source, out, options, recipe=recipe, force=force,
                                             step=lambda s: progress.update(task, description=s))
    names = list(manifest["graphs"])
    what = "model.py" if names == ["model"] else f"{len(names)} graphs ({', '.join(names)})"
    console.print(f"[green]compiled[/green] {source} -> {out}/ ({what}; recipe {r.name})")
    for g in graphs:
        for line in summary(g.program.dims, g.program.static_dims):
            console.print(f"  {g.name + ': ' if len(graphs) > 1 else ''}{line}", highlight=False)
    if r.name == "causal-lm":
        console.print(f"  with a KV cache: fx2mlx generate {out}")
    _emit_targets(out, targets)
    if check:
        run_check(out, captured={g.name: g.captured for g in graphs})


def _emit_targets(out: Path, targets: list[str]) -> None:
    """Emitters beyond model.py: `--target cpp` renders <graph>/cpp/ from each graph's ir.json (fx2mlx.cpp)."""
    if "cpp" in targets:
        from .cpp.cli import emit_for_compile

        console.print(f"[green]rendered[/green] {emit_for_compile(out)}/ (build it: fx2mlx build {out})")


def run_check(out: Path, **kwargs) -> None:
    """Hook for the golden harness (fx2mlx.golden)."""
    try:
        from .golden.cli import check_output
    except ImportError:
        raise Fx2MlxError("the golden harness is not available in this installation") from None
    check_output(out, **kwargs)


@app.command("ir")
def ir_cmd(
    source: str = typer.Argument(..., help=SOURCE_HELP + " Or a compiled output directory (reads its ir.json)."),
    json_out: bool = typer.Option(False, "--json", help="Print the IR as JSON."),
    inputs: Optional[Path] = typer.Option(None, help="safetensors file of example inputs."),
    raw: bool = typer.Option(False, "--raw", help="Before fx2mlx's passes (as torch.export gave it)."),
):
    """Print the IR of SOURCE as a tree grouped by module path (or as JSON)."""
    from .compiler.errors import SourceError
    from .compiler.irprint import print_tree

    p = Path(source)
    if p.is_dir() and not (p / "manifest.json").is_file() and not (p / "config.json").is_file():
        raise SourceError(f"{p} is not a compiled fx2mlx output (no manifest.json) nor a Hugging Face model "
                          "directory (no config.json)")
    if p.is_dir() and (p / "manifest.json").is_file():
        from .manifest import read_ir, read_manifest

        manifest = read_manifest(p)
        g = manifest["graphs"][manifest["entry"]]
        program = read_ir(p / g["dir"])
    else:
        from .compiler.capture import ProgramSource, capture, load_source

        with _progress() as progress:
            task = progress.add_task(f"loading {source}", total=None)
            src = load_source(source, str(inputs) if inputs else None)
            if isinstance(src, ProgramSource):
                raise Fx2MlxError(f"{source} is a program of several graphs; compile it and pass the output folder")
            progress.update(task, description="torch.export")
            program = capture(src.module, src.args, src.kwargs, description=src.description, shapes="auto").program
        if not raw:
            from .compiler.passes import run_default_passes

            program = run_default_passes(program)
    if json_out:
        sys.stdout.write(program.to_json() + "\n")
    else:
        print_tree(program, Console())


def _register_extensions() -> None:
    """Commands contributed by other parts of fx2mlx (golden harness, op coverage, C++, LLM, streams)."""
    import importlib

    for mod in ("fx2mlx.golden.cli", "fx2mlx.conformance.coverage", "fx2mlx.cpp.cli", "fx2mlx.llm.cli",
                "fx2mlx.stream_cli"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and mod.startswith(e.name):
                continue  # that part is not installed
            raise
        m.register(app)


def main(argv: list[str] | None = None) -> int:
    import logging

    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    _register_extensions()
    if not verbose:  # torch.export logs its internal errors (with stack traces) before raising them
        logging.disable(logging.CRITICAL)
    try:
        app(args=argv, standalone_mode=False)
    except Fx2MlxError as e:
        if _DEBUG:
            raise
        console.print("[red]error:[/red] " + _escape(str(e)), highlight=False, soft_wrap=True)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return int(e.code or 0)
    except Exception as e:  # click usage errors etc.
        if hasattr(e, "show") and isinstance(getattr(e, "exit_code", None), int):  # click's (or typer's copy's) usage errors
            e.show()
            return e.exit_code
        if type(e).__name__ == "Abort":
            return 1
        if _DEBUG:
            raise
        return _internal_error(e, argv)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return 130
    finally:
        if not verbose:
            logging.disable(logging.NOTSET)
    return 0


def _internal_error(e: BaseException, argv: list[str]) -> int:
    """An exception fx2mlx did not expect: a one-line summary, the full trace in a file, a request to report."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="fx2mlx-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write(f"fx2mlx {' '.join(argv)}\n\n")
        traceback.print_exception(type(e), e, e.__traceback__, file=f)
    first = str(e).splitlines()[0] if str(e) else ""
    console.print(f"[red]internal error:[/red] {_escape(type(e).__name__)}: {_escape(first)}\n"
                  f"  This is a bug in fx2mlx. The full trace is in {path}; please report it to the fx2mlx "
                  "maintainers with that file and the command line.", highlight=False, soft_wrap=True)
    return InternalError.exit_code


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
