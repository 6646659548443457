"""IR passes: identity removal, dead code, snake1d recognition, the module tree."""
import torch
from torch import nn

from fx2mlx.compiler.capture import capture
from fx2mlx.compiler.modtree import build_calls
from fx2mlx.compiler.passes import run_default_passes


class SnakeKokoro(nn.Module):  # Kokoro/iSTFTNet spelling: 1/alpha, no eps, ** 2
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.rand(1, 4, 1) + 0.5)

    def forward(self, x):
        return x + (1 / self.alpha) * (torch.sin(self.alpha * x) ** 2)


class SnakeDAC(nn.Module):  # DAC/BigVGAN spelling: reciprocal(alpha + 1e-9), pow(2)
    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.rand(1, 4, 1) + 0.5)

    def forward(self, x):
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


def targets(m, *args):
    return [n.target for n in run_default_passes(capture(m, args).program).nodes]


def test_snake_recognised_in_both_spellings():
    x = torch.randn(1, 4, 10)
    assert targets(SnakeKokoro(), x) == ["fx2mlx.snake1d.default"]
    assert targets(SnakeDAC(), x) == ["fx2mlx.snake1d.default"]


def test_snake_not_recognised_when_intermediate_is_reused():
    class Leaky(SnakeDAC):
        def forward(self, x):
            s = torch.sin(self.alpha * x)
            return x + (self.alpha + 1e-9).reciprocal() * s.pow(2) + s

    assert "fx2mlx.snake1d.default" not in targets(Leaky(), torch.randn(1, 4, 10))


def test_dropout_and_dead_code_removed():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            unused = torch.exp(x)  # noqa: F841
            return self.fc(self.drop(x))

    assert targets(M().eval(), torch.randn(2, 3)) == ["aten.linear.default"]


def test_module_tree_repeated_calls_and_interfaces():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(self.fc(x)) + x

    p = run_default_passes(capture(Shared(), (torch.randn(2, 4),)).program)
    root = build_calls(p, "Shared")
    calls = [c for c in root.items if not hasattr(c, "target")]
    assert [c.path for c in calls] == ["fc", "fc"]
    assert [c.key for c in calls] == ["L__self__fc", "L__self__fc@1"]
    assert calls[1].inputs == calls[0].outputs  # the second call consumes the first's output


def test_module_called_with_different_shapes_is_inlined(tmp_path):
    """One module instance called on inputs of different shapes (sizes baked into its ops) cannot be one
    class __call__: its calls are inlined into the caller, and the result still matches."""
    from helpers import compile_and_compare

    class Flat(nn.Module):
        def forward(self, x):
            return x.flatten() * 2

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.flat = Flat()

        def forward(self, x, y):
            return self.flat(x), self.flat(y)

    compile_and_compare(M(), (torch.randn(2, 3), torch.randn(5)), out_dir=tmp_path / "o")
