# runtime: program_files
"""Load every graph of a compiled fx2mlx program: `program = load(OUT)`; `program.<graph>(...)` runs one
graph, `program(...)` the entry graph. The code that connects the graphs is the caller's. Each graph's
forward runs under mx.compile where it may (its model.py's `load`); `load(OUT, compile=False)`: uncompiled."""
import json
from pathlib import Path


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
