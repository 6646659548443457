"""Import a compiled graph's model.py by path: the drivers (OUT/program.py) load each graph folder with it."""
import importlib.util
import sys
from pathlib import Path


def import_model(path, name):
    """Import one graph's model.py by path, under a module name of its own (one per folder)."""
    key = f"fx2mlx_out_{name}_{abs(hash(str(Path(path).resolve())))}"
    spec = importlib.util.spec_from_file_location(key, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[key] = mod
    spec.loader.exec_module(mod)
    return mod
