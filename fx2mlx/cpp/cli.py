"""`fx2mlx regen-cpp OUT` and `fx2mlx build OUT` (registered by `fx2mlx.cli._register_extensions`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

console = Console(stderr=True)
TARGETS = ("python", "cpp")


def parse_targets(target: str) -> list[str]:
    """`--target python,cpp` -> ["python", "cpp"] (python is always written: the C++ program shares its
    weights, inputs and ir.json)."""
    from ..compiler.errors import Fx2MlxError

    names = [t.strip() for t in target.split(",") if t.strip()]
    bad = [t for t in names if t not in TARGETS]
    if bad or not names:
        raise Fx2MlxError(f"--target must be a comma-separated list of {', '.join(TARGETS)}; got {target!r}")
    return names


def emit_for_compile(out: Path) -> Path:
    """Called by `fx2mlx compile --target cpp` once OUT is written: OUT/cpp/ from OUT/ir.json."""
    from .emit import regen

    dirs = regen(out)
    return dirs[0] if len(dirs) == 1 else Path(out)


def register(app: typer.Typer) -> None:
    @app.command("regen-cpp")
    def regen_cmd(
        out: Path = typer.Argument(..., help="A compiled output directory (reads its ir.json)."),
        build: bool = typer.Option(False, "--build", help="Also configure and build the program."),
        templates: Optional[Path] = typer.Option(None, "--templates", help="A folder of templates that replace the "
                                                 "package's of the same name (main.cpp.j2, overrides/lstm.cpp.j2, ...); "
                                                 "default: $FX2MLX_CPP_TEMPLATES."),
    ):
        """Re-render OUT/cpp/ from OUT/ir.json and the current templates and op tables (no torch needed)."""
        from .emit import regen

        from ..manifest import graph_folders

        cpps = [g / "cpp" for _, g, _ in graph_folders(out)]
        before = {c: {p.name: p.read_bytes() for p in c.glob("*") if p.is_file()} if c.is_dir() else {} for c in cpps}
        regen(out, templates=templates)
        for cpp in cpps:
            changed = [p.name for p in sorted(cpp.glob("*")) if p.is_file() and before[cpp].get(p.name) != p.read_bytes()]
            console.print(f"[green]rendered[/green] {cpp}/ ({', '.join(changed) + ' changed' if changed else 'unchanged'})")
            if build:
                _build(cpp.parent)

    @app.command("build")
    def build_cmd(
        out: Path = typer.Argument(..., help="A compiled output directory with cpp/ (see --target cpp)."),
        jobs: Optional[int] = typer.Option(None, "-j", "--jobs", help="Parallel compile jobs."),
        blas: str = typer.Option("auto", help="BLAS linked ahead of MLX on Linux: auto, none, or a library path."),
        opt: Optional[str] = typer.Option(None, help="Compiler optimisation flags for the generated code (default -O1)."),
        bench: int = typer.Option(0, help="After building, run the program with --bench N and print its timings."),
    ):
        """Configure and build OUT/cpp/ with CMake; the program is OUT/cpp/build/model."""
        exe = _build(out, jobs=jobs, blas=blas, opt=opt)
        if bench:
            from .build import run

            r = run(exe, "--out", str(Path(out) / "cpp" / "outputs.safetensors"), "--bench", str(bench))
            typer.echo(r.stdout.rstrip())


    @app.command("check-cpp")
    def check_cpp_cmd(
        out: Path = typer.Argument(..., help="A compiled output directory with cpp/."),
        source: Optional[str] = typer.Option(None, "--source", help="The PyTorch model, when OUT's recorded source "
                                             "cannot be rebuilt: a factory or HF directory."),
        inputs: Optional[Path] = typer.Option(None, "--inputs", help="safetensors file of inputs (input_0..); "
                                              "default: the example inputs."),
        atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance (default by dtype)."),
        rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance (default by dtype)."),
        no_build: bool = typer.Option(False, "--no-build", help="Use the program as built."),
    ):
        """The golden harness on the C++ program: build it, run it with --dump, compare every IR value with
        PyTorch's; exit 10 naming the first divergence."""
        from .check import check_cpp

        check_cpp(out, source=source, inputs=inputs, atol=atol, rtol=rtol, build_first=not no_build)


def _build(out: Path, **kwargs) -> Path:
    from ..manifest import graph_folders
    from .build import build, find_blas

    graph_folders(out)  # a compiled output (a clear error otherwise)

    with console.status("building C++ (cmake)"):
        exe = build(out, **kwargs)
    blas = kwargs.get("blas", "auto")
    lib = find_blas() if blas in (None, "auto") else (None if blas in ("none", "off") else blas)
    console.print(f"[green]built[/green] {exe}" + (f" (BLAS: {lib})" if lib else " (MLX's reference BLAS)"))
    return exe
