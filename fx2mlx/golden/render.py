"""The report, rendered: a rich table in the terminal, a PNG of the error per layer (matplotlib, Agg),
and a standalone HTML page (Jinja template `templates/golden_report.html.j2`) that embeds the PNG."""
from __future__ import annotations

import base64
import math
from pathlib import Path

MAX_ROWS = 120


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else str(x)
    return f"{x:.2e}" if isinstance(x, float) else str(x)


def _cos(x) -> str:
    return "-" if x is None else f"{x:.6f}"


def print_table(report: dict, console, show_all: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table

    modes = report["modes"]
    layers = report["layers"]
    firsts = {fd["key"] for fd in report["first_divergence"].values() if fd and fd.get("key")}
    rows = layers
    hidden = 0
    if not show_all and len(layers) > MAX_ROWS:
        rows = [r for r in layers if not r["passed"] or r["leaf"]][:MAX_ROWS]
        hidden = len(layers) - len(rows)
    table = Table(title=f"golden check: {report['out']}", title_justify="left", header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("layer")
    table.add_column("type")
    for m in modes:
        table.add_column(f"{m[:3]} max|Δ|", justify="right")
        table.add_column(f"{m[:3]} rel", justify="right")  # max|Δ| / max|PyTorch|
        table.add_column(f"{m[:3]} cos", justify="right")
    table.add_column("")
    for r in rows:
        cells = [str(r["index"]), ("  " * max(r["depth"], 0)) + r["path"], r["type"]]
        for m in modes:
            rec = r[m]
            style = "" if rec["passed"] else "red"
            cells += [f"[{style}]{t}[/]" if style else t
                      for t in (_fmt(rec.get("max_abs")), _fmt(rec.get("rel_err")), _cos(rec.get("cosine")))]
        mark = "[green]ok[/]" if r["passed"] else "[red bold]FAIL[/]"
        if r["key"] in firsts:
            mark = "[red bold]FIRST[/]"
        table.add_row(*cells, mark)
    console.print(table)
    if hidden:
        console.print(f"({hidden} passing non-leaf layers not shown; --all shows every layer)")
    s = report["summary"]
    tol = report["tolerances"]
    parts = [f"{s['layers']} layers ({s['leaf_layers']} leaf), {s['values']} values"]
    for m in modes:
        parts.append(f"{m}: {s[m]['failed_layers']} failing, worst max|Δ| {_fmt(s[m]['worst_max_abs'])}, "
                     f"worst max|Δ|/max|ref| {_fmt(s[m].get('worst_rel_err'))}, min cosine {_cos(s[m]['min_cosine'])}")
    rule = (f"  [pass: max|Δ| <= atol {tol['atol']:g} + rtol {tol['rtol']:g}·max|ref| per value, "
            f"cosine >= {tol['cosine']}]")
    console.print("; ".join(parts) + escape(rule), highlight=False)  # (escaped: not a rich markup tag)


def plot(report: dict, path: Path) -> int:
    """Error per layer in execution order, one point per layer and mode, with the tolerance line.
    Top: the norm-wise relative error max|Δ| / max|expected| (line: rtol, the bound wherever max|expected|
    is well above atol/rtol). Bottom: max|Δ| / (atol + rtol·max|expected|), the pass criterion (line: 1).
    Failing points are red; the first divergence is marked. Returns the number of layers."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    layers = report["layers"]
    modes = report["modes"]
    tol = report["tolerances"]
    n = len(layers)
    xs = list(range(n))
    width = min(max(8.0, 0.16 * n + 3), 40.0)
    fig, axes = plt.subplots(2, 1, figsize=(width, 7.5), sharex=True)
    colors = {"accumulated": "tab:blue", "isolated": "tab:orange"}
    markers = {"accumulated": "o", "isolated": "s"}
    for ax, key, line, label in ((axes[0], "rel_err", tol["rtol"], f"rtol {tol['rtol']:g}"),
                                 (axes[1], "ratio", 1.0, "tolerance (pass <= 1)")):
        positive = [_num(r[m].get(key)) for r in layers for m in modes if _num(r[m].get(key)) > 0]
        floor = min(min(positive, default=line) / 10, line / 100)  # exact zeros are drawn here, hollow
        for m in modes:
            pts = [(x, _num(r[m].get(key)), r[m]["passed"]) for x, r in zip(xs, layers) if not r[m].get("na")]
            ax.plot([p[0] for p in pts], [max(p[1], floor) for p in pts], marker=markers[m], markersize=3.5,
                    linewidth=0.8, color=colors[m], label=m)
            zeros = [(x, floor) for x, y, _ in pts if y <= 0]
            if zeros:
                ax.scatter(*zip(*zeros), s=22, facecolors="white", edgecolors=colors[m], zorder=4)
            bad = [(x, max(y, floor)) for x, y, ok in pts if not ok]
            if bad:
                ax.scatter(*zip(*bad), color="red", s=28, zorder=5, label=f"{m}: out of tolerance")
        ax.axhline(line, color="black", linestyle="--", linewidth=1.0, label=label)
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
    marks: dict[int, list[str]] = {}
    for m, fd in report["first_divergence"].items():
        if fd and fd.get("index") is not None:
            marks.setdefault(fd["index"], []).append(m)
    for k, (idx, ms) in enumerate(sorted(marks.items())):
        for ax in axes:
            ax.axvline(idx, color="red", alpha=0.35, linewidth=2)
        axes[0].annotate(f"first divergence ({', '.join(ms)}): {layers[idx]['path']}", (idx, axes[0].get_ylim()[1]),
                         xytext=(4, -12 - 12 * k), textcoords="offset points", fontsize=8, color="red")
    axes[0].set_ylabel("max|MLX − PyTorch| / max|PyTorch|")
    axes[1].set_ylabel("max|Δ| / (atol + rtol·max|PyTorch|)")
    axes[0].set_title(f"fx2mlx golden check — {n} layers in execution order")
    axes[0].legend(fontsize=7, loc="upper left")
    step = max(1, math.ceil(n / 80))
    axes[1].set_xticks(xs[::step])
    axes[1].set_xticklabels([layers[i]["path"] for i in xs[::step]], rotation=90, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return n


def _num(x) -> float:
    if x is None:
        return 0.0
    x = float(x)
    return 1e12 if not math.isfinite(x) else x


def html(report: dict, path: Path, png: Path | None, message: str | None) -> None:
    import jinja2

    from ..compiler.emit_py import TEMPLATES

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = _fmt
    env.filters["cos"] = _cos
    img = base64.b64encode(png.read_bytes()).decode() if png is not None and png.is_file() else None
    path.write_text(env.get_template("golden_report.html.j2").render(r=report, png=img, message=message))
