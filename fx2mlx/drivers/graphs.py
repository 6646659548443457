"""Load every graph of a compiled fx2mlx program: `program = load(OUT)`; `program.<graph>(...)` runs one
graph, `program(...)` the entry graph. The code that connects the graphs is the caller's. Each graph's
forward runs under mx.compile where it may (its model.py's `load`); `load(OUT, compile=False)`: uncompiled."""
import importlib.util
import json
import sys
from pathlib import Path


def import_model(path, name):
    """Import one graph's model.py by path, under a name of its own."""
    key = f"fx2mlx_out_{name}_{abs(hash(str(Path(path).resolve())))}"
    spec = importlib.util.spec_from_file_location(key, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[key] = mod
    spec.loader.exec_module(mod)
    return mod


class Program:
    def __init__(self, folder, compile=True):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        self.graphs = {}
        for name, g in self.manifest["graphs"].items():
            gdir = self.folder / g["dir"]
            self.graphs[name] = import_model(gdir / "model.py", name).load(gdir, compile=compile)

    def __getattr__(self, name):
        graphs = self.__dict__.get("graphs", {})
        if name in graphs:
            return graphs[name]
        raise AttributeError(f"the program has no graph {name!r} (graphs: {', '.join(graphs)})")

    def __call__(self, *args, **kwargs):
        return self.graphs[self.manifest["entry"]](*args, **kwargs)


def load(path=None, compile=True):
    return Program(Path(path) if path is not None else Path(__file__).resolve().parent, compile)
