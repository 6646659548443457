"""LSTM/GRU through the whole compiler: layers, directions, batch_first, initial states given or not,
outputs and final states returned."""
import pytest
import torch
from torch import nn

from helpers import compile_and_compare


class WithStates(nn.Module):
    def __init__(self, cell, **kw):
        super().__init__()
        self.rnn = cell(input_size=5, hidden_size=6, **kw)

    def forward(self, x, *states):
        if not states:
            return self.rnn(x)
        return self.rnn(x, states[0] if len(states) == 1 else tuple(states))


@pytest.mark.parametrize("num_layers, bidirectional, batch_first, with_states", [
    (1, False, True, False), (1, True, False, True), (2, True, True, True), (3, False, False, False),
])
def test_lstm(tmp_path, num_layers, bidirectional, batch_first, with_states):
    torch.manual_seed(0)
    m = WithStates(nn.LSTM, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first).eval()
    x = torch.randn(2, 7, 5) if batch_first else torch.randn(7, 2, 5)
    d = num_layers * (2 if bidirectional else 1)
    states = (torch.randn(d, 2, 6), torch.randn(d, 2, 6)) if with_states else ()
    compile_and_compare(m, (x, *states), out_dir=tmp_path / "o")  # compares output, h_n and c_n


@pytest.mark.parametrize("num_layers, bidirectional, with_state", [(1, False, False), (2, True, True)])
def test_gru(tmp_path, num_layers, bidirectional, with_state):
    torch.manual_seed(0)
    m = WithStates(nn.GRU, num_layers=num_layers, bidirectional=bidirectional, batch_first=True).eval()
    x = torch.randn(2, 7, 5)
    states = (torch.randn(num_layers * (2 if bidirectional else 1), 2, 6),) if with_state else ()
    compile_and_compare(m, (x, *states), out_dir=tmp_path / "o")
