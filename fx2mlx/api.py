"""Python API: `fx2mlx.convert(module_or_program, args, kwargs)` and `fx2mlx.load(dir)`."""
from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


class CompiledModel:
    """One compiled graph, loaded: call it with mx.arrays, numpy arrays or torch tensors (inputs in the
    order of the example inputs, or by name); it returns what the PyTorch forward returned, tensors as
    mx.array. Sizes follow the inputs along the graph's dynamic dimensions (`.dims`). With compile=True
    (the default) the forward runs under mx.compile where the graph allows it (model.py's `load`)."""

    def __init__(self, out_dir: Path, graph: str | None = None, *, _tmp: tempfile.TemporaryDirectory | None = None,
                 manifest: dict | None = None, compile: bool = True):
        from .manifest import read_manifest

        self.out_dir = Path(out_dir)
        self._tmp = _tmp  # keeps a temporary output alive as long as this object
        self.manifest = manifest or read_manifest(self.out_dir)
        self.graph = graph or self.manifest["entry"]
        self.info = self.manifest["graphs"][self.graph]
        self.dir = self.out_dir / self.info["dir"]
        self.module, self.model = load_graph(self.dir, compile=compile)

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.info["inputs"]]

    @property
    def dims(self) -> list[dict]:
        return self.info.get("dims", [])

    @property
    def static_dims(self) -> list[dict]:
        return self.info.get("static_dims", [])

    def __call__(self, *args, **kwargs) -> Any:
        import mlx.core as mx

        from .compiler.weights import from_numpy

        conv = lambda a: a if isinstance(a, mx.array) or a is None or isinstance(a, list) else from_numpy(_np(a))  # noqa: E731
        return self.model(*[conv(a) for a in args], **{k: conv(v) for k, v in kwargs.items()})

    def save(self, out_dir: str | Path, *, force: bool = False) -> Path:
        from .recipes.writer import staged_output

        with staged_output(Path(out_dir), force) as tmp:
            for p in self.out_dir.iterdir():
                if p.is_dir():
                    shutil.copytree(p, tmp / p.name)
                else:
                    shutil.copy2(p, tmp / p.name)
        return Path(out_dir)

    def __repr__(self) -> str:
        return f"CompiledModel({self.out_dir}, graph={self.graph!r}, inputs={self.input_names})"


class CompiledProgram:
    """A compiled program of several graphs: `program.<graph>(...)` or `program.graphs[name](...)`."""

    def __init__(self, out_dir: Path, *, _tmp: tempfile.TemporaryDirectory | None = None, manifest: dict | None = None,
                 compile: bool = True):
        from .manifest import read_manifest

        self.out_dir = Path(out_dir)
        self._tmp = _tmp
        self.manifest = manifest or read_manifest(self.out_dir)
        self.graphs = {name: CompiledModel(self.out_dir, name, manifest=self.manifest, compile=compile)
                       for name in self.manifest["graphs"]}

    def __getattr__(self, name: str) -> CompiledModel:
        graphs = self.__dict__.get("graphs", {})
        if name in graphs:
            return graphs[name]
        raise AttributeError(f"the program has no graph {name!r} (graphs: {', '.join(graphs)})")

    def __getitem__(self, name: str) -> CompiledModel:
        return self.graphs[name]

    save = CompiledModel.save

    def __repr__(self) -> str:
        return f"CompiledProgram({self.out_dir}, recipe={self.manifest['recipe']!r}, graphs={list(self.graphs)})"


def _np(a):
    import numpy as np

    if hasattr(a, "detach"):  # a torch tensor
        from .compiler.weights import to_numpy

        return to_numpy(a)
    return np.asarray(a)


def load_module(path: Path):
    """Import a generated model.py by path, under a unique module name."""
    name = f"fx2mlx_generated_{abs(hash(str(Path(path).resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_graph(gdir: Path, *, compile: bool = True, dtype=None):
    """(module, model) of a compiled graph folder. compile=False gives the plain nn.Module (model.py files
    written before `load(compile=...)` existed are always uncompiled). A missing or damaged model.py or
    weights file is a SourceError naming it (not the exception MLX or Python raises)."""
    import inspect

    from .compiler.errors import SourceError

    gdir = Path(gdir)
    for f in ("model.py", "weights.safetensors"):
        if not (gdir / f).is_file():
            raise SourceError(f"{gdir} has no {f}: not a complete fx2mlx output (recompile it)")
    try:
        module = load_module(gdir / "model.py")
    except Exception as e:  # noqa: BLE001 - a damaged or hand-edited model.py
        raise SourceError(f"{gdir / 'model.py'} cannot be imported ({type(e).__name__}: {e}); recompile it") from None
    kwargs = {"dtype": dtype, "compile": compile} if "compile" in inspect.signature(module.load).parameters \
        else {"dtype": dtype}
    try:
        return module, module.load(gdir, **kwargs)
    except Exception as e:  # noqa: BLE001 - unreadable or mismatched weights
        raise SourceError(f"{gdir}: the weights cannot be loaded ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); recompile it") from None


def unload_module(mod) -> None:
    sys.modules.pop(mod.__name__, None)


def convert(module, args=(), kwargs: dict | None = None, *, out_dir: str | Path | None = None,
            dtype: str | None = None, dynamic_shapes=None, static: bool = False, force: bool = False,
            recipe: str | None = None, compile: bool = True):
    """Compile an in-process torch.nn.Module on example inputs (or an fx2mlx.Program of named graphs).
    Dimensions are dynamic where the model allows it (static=True: all at the example sizes);
    `dynamic_shapes` (torch.export's form, by input name) requires some axes to be dynamic.
    Without out_dir the output lives in a temporary folder (use `.save(dir)` to keep it). compile=False:
    the loaded model runs its forward uncompiled (default: under mx.compile where the graph allows it)."""
    import torch

    from .compiler.capture import Source
    from .compiler.errors import SourceError
    from .recipes import Options, Program, Stream, compile_source

    if isinstance(module, (Program, Stream)):
        if args or kwargs:
            raise SourceError("convert(program): the example inputs belong to each graph (Program.add)")
        source = module
    elif isinstance(module, torch.nn.Module):
        if not isinstance(args, (tuple, list)):
            args = (args,)
        source = Source(module, tuple(args), dict(kwargs or {}),
                        f"python:{type(module).__module__}.{type(module).__qualname__}")
    else:
        raise SourceError(f"convert() takes a torch.nn.Module, an fx2mlx.Program or an fx2mlx.Stream, got {type(module).__name__}")
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fx2mlx-")
        out_dir = Path(tmp.name) / "out"
    options = Options(dtype=dtype, shapes="static" if static else "auto")
    if dynamic_shapes is not None:
        _, graphs, manifest = _compile_with_dynamic(source, Path(out_dir), options, dynamic_shapes, force, recipe)
    else:
        _, graphs, manifest = compile_source(source, Path(out_dir), options, recipe=recipe, force=force)
    return _loaded(Path(out_dir), manifest, tmp, compile)


def _compile_with_dynamic(source, out_dir, options, dynamic_shapes, force, recipe):
    """convert(..., dynamic_shapes=torch.export spec): the axes it names must be dynamic."""
    from .compiler.capture import capture
    from .compiler.passes import run_default_passes
    from .recipes import GraphRecipe, get_recipe
    from .recipes.base import Graph
    from .recipes.writer import check_out_dir, write_output

    check_out_dir(out_dir, force)
    captured = capture(source.module, source.args, source.kwargs, dynamic_shapes=dynamic_shapes,
                       description=source.description, shapes=options.shapes)
    r = get_recipe(recipe) if recipe else GraphRecipe()
    graphs = [Graph("model", captured, run_default_passes(captured.program))]
    return r, graphs, write_output(r, source.description, graphs, out_dir, options, force=force)


def _loaded(out_dir: Path, manifest: dict, tmp=None, compile: bool = True):
    if manifest.get("driver") in ("seq2seq", "whisper", "stream"):  # a program with host code (generate): its vendored driver
        program = load_module(out_dir / "program.py").load(out_dir, compile=compile)
        program._tmp = tmp
        return program
    if len(manifest["graphs"]) == 1 and manifest["recipe"] != "program":
        return CompiledModel(out_dir, _tmp=tmp, manifest=manifest, compile=compile)
    return CompiledProgram(out_dir, _tmp=tmp, manifest=manifest, compile=compile)


def load(out_dir: str | Path, *, compile: bool = True):
    """Load a compiled output folder (needs only mlx): a CompiledModel for one graph, a CompiledProgram
    for a program of several graphs. compile=False: forwards run uncompiled (default: under mx.compile,
    except graphs that draw random numbers or carry a KV cache; see model.py's `load`)."""
    from .manifest import read_manifest

    out_dir = Path(out_dir)
    return _loaded(out_dir, read_manifest(out_dir), compile=compile)
