import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/zoo.py and helpers importable as top-level modules


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    # With mlx.core imported, torch's 2-thread CPU kernels sometimes stall (seen: LSTM 0.45 s per call
    # instead of 0.6 ms); one thread avoids it and these tests are small.
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
