"""Streaming programs (fx2mlx.Stream): an LSTM voice-activity detector whose state (h, c) is an explicit
input and output of the compiled graph, fed 30 ms chunks by the vendored driver, gives the probabilities
PyTorch gives on the whole clip at once."""
import numpy as np
import pytest
import torch
import torch.nn as nn

import fx2mlx
from fx2mlx.compiler.errors import SourceError

RATE, CHUNK, HOP = 16000, 480, 160  # 30 ms chunks of 10 ms frames


class LstmVad(nn.Module):
    """Conv front end (one 10 ms frame per output step), LSTM, sigmoid head: (B, samples), h, c ->
    (B, frames) speech probabilities, h, c."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.front = nn.Conv1d(1, 24, kernel_size=HOP, stride=HOP)
        self.proj = nn.Linear(24, 24)
        self.lstm = nn.LSTM(24, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, audio, h, c):
        f = torch.relu(self.front(audio.unsqueeze(1))).transpose(1, 2)
        y, (h, c) = self.lstm(torch.tanh(self.proj(f)), (h, c))
        return torch.sigmoid(self.head(y)).squeeze(-1), h, c


class Grow(nn.Module):
    def forward(self, x, h):
        return x, torch.cat([h, x], dim=-1)


class OnlyState(nn.Module):
    def forward(self, x, h):
        return h + x


def make_vad_stream():
    torch.manual_seed(0)
    vad = LstmVad().eval()
    h0 = torch.zeros(1, 1, 32)
    return fx2mlx.Stream(chunk=CHUNK).add("vad", vad, (torch.randn(1, CHUNK),), state={"h": h0, "c": h0.clone()})


def test_lstm_vad_streams_30ms_chunks_like_the_whole_clip(tmp_path):
    stream = make_vad_stream()
    vad = stream.stages["vad"][0]
    s = fx2mlx.convert(stream, out_dir=tmp_path / "out")
    assert fx2mlx.recipes.read_manifest(tmp_path / "out")["recipe"] == "stream"
    clip = torch.randn(1, 40 * CHUNK, generator=torch.Generator().manual_seed(3)) * 0.5  # 1.2 s
    with torch.no_grad():
        ref = vad(clip, torch.zeros(1, 1, 32), torch.zeros(1, 1, 32))[0].numpy()
    got = np.concatenate([np.asarray(s.feed(clip[:, k:k + CHUNK].numpy())) for k in range(0, clip.shape[1], CHUNK)],
                         axis=1)
    assert ref.shape == got.shape == (1, 120)
    assert ref.std() > 1e-3  # the probabilities move over the clip
    # float32, 120 LSTM steps carried across 40 calls: MLX vs torch kernels, seen ~1e-7
    assert np.abs(got - ref).max() <= 1e-5
    first = np.asarray(s.feed(clip[:, :CHUNK].numpy()))  # state carried on: not the clip's first chunk
    assert np.abs(first - ref[:, :3]).max() > 1e-4
    s.reset()
    np.testing.assert_allclose(np.asarray(s.feed(clip[:, :CHUNK].numpy())), ref[:, :3], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="480 samples"):
        s.feed(np.zeros((1, 100), np.float32))


def test_stream_declaration_errors():
    vad = LstmVad().eval()
    h0 = torch.zeros(1, 1, 32)
    with pytest.raises(SourceError, match="raised RuntimeError"):
        fx2mlx.Stream(chunk=CHUNK).add("vad", vad, (torch.randn(1, CHUNK),),
                                       state={"h": torch.zeros(1, 1, 32), "c": torch.zeros(1, 2, 32)}
                                       ).to_source("t")
    with pytest.raises(SourceError, match="shape and dtype of the old"):
        fx2mlx.Stream(chunk=CHUNK).add("grow", Grow(), (h0,), state={"h": h0}).to_source("t")
    with pytest.raises(SourceError, match="must return"):
        fx2mlx.Stream(chunk=CHUNK).add("only", OnlyState(), (h0,), state={"h": h0}).to_source("t")
    with pytest.raises(SourceError, match="no stages"):
        fx2mlx.Stream(chunk=CHUNK).to_source("t")
