"""Factories for the bad-input tests (used as `tests/data/bad_models.py:<name>`)."""
import torch
from torch import nn


@torch.library.custom_op("fx2mlx_test::mystery", mutates_args=())
def mystery(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@mystery.register_fake
def _(x):
    return torch.empty_like(x)


@torch.library.custom_op("fx2mlx_test::enigma", mutates_args=())
def enigma(x: torch.Tensor) -> torch.Tensor:
    return x + 1


@enigma.register_fake
def _(x):
    return torch.empty_like(x)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return mystery(self.fc(x))  # MYSTERY-LINE


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return enigma(x)  # ENIGMA-LINE


def unsupported():
    return Unsupported(), (torch.randn(2, 4),)


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # DATA-DEPENDENT-LINE
            return x * 2
        return x


def data_dependent():
    return DataDependent(), (torch.randn(3),)


def not_a_tuple():
    return 42


def raises():
    raise RuntimeError("factory exploded")
