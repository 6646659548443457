"""Reading a compiled output's manifest.json (no torch needed: `fx2mlx check --offline` and `fx2mlx.load`
use it). The writer is `fx2mlx.recipes.writer`."""
from __future__ import annotations

import json
from pathlib import Path

from .compiler.errors import SourceError

MANIFEST_VERSION = 2


def read_manifest(out_dir: Path) -> dict:
    """OUT/manifest.json, checked to be one this fx2mlx can read."""
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        raise SourceError(f"{out_dir} is not a compiled fx2mlx output (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as e:
        raise SourceError(f"{path}: invalid JSON ({e}); recompile it") from e
    if manifest.get("manifest_version") != MANIFEST_VERSION or "graphs" not in manifest:
        raise SourceError(f"{path} was written by another fx2mlx version "
                          f"(manifest version {manifest.get('manifest_version', 1)}, this one reads "
                          f"{MANIFEST_VERSION}); recompile it")
    return manifest


def read_ir(graph_dir: Path):
    """<graph>/ir.json as an ir.Program; a missing or unreadable file is a SourceError naming it."""
    from .compiler import ir

    path = Path(graph_dir) / "ir.json"
    if not path.is_file():
        raise SourceError(f"{graph_dir} has no ir.json: not a compiled fx2mlx graph (recompile it)")
    try:
        return ir.Program.from_json(path.read_text())
    except Exception as e:  # noqa: BLE001 - any parse or schema error of the file
        raise SourceError(f"{path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                          "recompile") from None


def graph_folders(path: Path) -> list[tuple[str, Path, dict]]:
    """The graphs a tool should act on: (name, folder, info) for every graph of OUT, or the one graph
    whose folder `path` is (OUT/<graph>). `info` is the graph's manifest entry plus the program's
    recipe, dtype, source and recipe-specific entries (e.g. "llm")."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        out, only = path, None
    elif (path.parent / "manifest.json").is_file():
        out, only = path.parent, path.name
    else:
        raise SourceError(f"{path} is not a compiled fx2mlx output (no manifest.json)")
    manifest = read_manifest(out)
    common = {k: v for k, v in manifest.items() if k not in ("graphs", "entry")}
    found = [(name, out / g["dir"], {**common, **g}) for name, g in manifest["graphs"].items()
             if only is None or g["dir"] == only]
    if not found:
        raise SourceError(f"{path} is not a graph folder of {out} (graphs: {', '.join(manifest['graphs'])})")
    return found
