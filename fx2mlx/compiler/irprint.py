"""The IR as a readable tree: module calls nested as in the model, one line per op."""
from __future__ import annotations

from rich.console import Console
from rich.tree import Tree

from . import ir
from .modtree import Call, build_calls


def _fmt_arg(v) -> str:
    if isinstance(v, ir.Ref):
        return f"%{v.name}"
    if isinstance(v, ir.DType):
        return v.name
    if isinstance(v, tuple):
        return "[" + ", ".join(_fmt_arg(x) for x in v) + "]"
    return repr(v)


def _fmt_type(t) -> str:
    if isinstance(t, ir.TensorType):
        return f"{t.dtype}[{', '.join(str(d) for d in t.shape)}]"
    if isinstance(t, ir.TupleType):
        return "(" + ", ".join(_fmt_type(x) for x in t.items) + ")"
    if isinstance(t, ir.ScalarType):
        return t.kind
    return "None"


def format_node(n: ir.Node) -> str:
    args = ", ".join(f"{k}={_fmt_arg(v)}" for k, v in n.args)
    src = f"  [dim]# {n.source.file.rsplit('/', 1)[-1]}:{n.source.line}[/dim]" if n.source else ""
    return f"[bold]%{n.name}[/bold]: {_fmt_type(n.type)} = [cyan]{n.target}[/cyan]({args}){src}"


def print_tree(program: ir.Program, console: Console) -> None:
    root_type = next((m.type for m in program.modules if m.path == ""), "model")
    calls = build_calls(program, root_type)
    tree = Tree(f"[bold]{root_type}[/bold]  inputs: " + ", ".join(
        f"%{i.name}: {_fmt_type(i.type)}" for i in program.user_inputs))

    def add(t: Tree, c: Call):
        for it in c.items:
            if isinstance(it, Call):
                sub = t.add(f"[magenta]{it.path}[/magenta] ({it.type_name})  "
                            f"in: {', '.join('%' + v for v in it.inputs)} -> out: {', '.join('%' + v for v in it.outputs)}")
                add(sub, it)
            else:
                t.add(format_node(it))

    add(tree, calls)
    tree.add("[bold]return[/bold] " + ", ".join(_fmt_arg(o) for o in program.outputs))
    nweights = len(program.weight_inputs)
    console.print(tree)
    console.print(f"{len(program.nodes)} ops, {nweights} weight tensors")
