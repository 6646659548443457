"""openWakeWord as a streaming fx2mlx program: PyTorch twins of its front end and speech-embedding model,
and its classifier heads, as three stages with explicit ring-buffer state.

What the package's code fixes (openwakeword 0.6.0, `utils.AudioFeatures`, `model.Model`), and the twins
follow: 16 kHz int16 audio handled as float32 in 80 ms chunks (1280 samples); the mel model runs on the
chunk plus the previous 480 samples, giving 8 new frames of 32 mel bins; its output is transformed
`x/10 + 2`; the mel buffer starts as ones; the embedding model takes windows of 76 frames every 8
frames -> 96 values; the heads (`openwakeword.train.Model`, input_shape (16, 96)) see the last 16
embeddings. What the package ships only as melspectrogram.onnx and embedding_model.onnx (downloaded at
run time, not reachable here) is a twin of the interface, not of the weights or exact layers:
  - front end: 512-sample frames every 160 samples (the 1760 -> 8 frames arithmetic above), Hann window,
    power spectrum, 32 HTK mel bands 60-3800 Hz, 10*log10(max(mel, 1e-10)), then x/10 + 2;
  - embedding: a conv stack (76, 32) -> 96 with LeakyReLU and max-pooling (Google's speech_embedding
    is a conv stack of that shape; its layers are not verified).
  - heads: the `dnn` and `rnn` networks of `openwakeword.train.Model`, same layers and parameter names.
The embedding buffer starts as zeros (the package fills it with embeddings of random noise).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

RATE, CHUNK, TAIL, HOP, NFFT, NMELS = 16000, 1280, 480, 160, 512, 32
WINDOW, STRIDE, NEMB, NFEAT = 76, 8, 96, 16
FRAMES_PER_CHUNK = (CHUNK + TAIL - NFFT) // HOP + 1  # 8


def mel_filterbank(n_mels=NMELS, n_fft=NFFT, rate=RATE, fmin=60.0, fmax=3800.0) -> torch.Tensor:
    """(n_fft//2+1, n_mels) triangular HTK-mel filters."""
    def mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    pts = torch.linspace(mel(fmin), mel(fmax), n_mels + 2, dtype=torch.float64)
    hz = 700.0 * (10 ** (pts / 2595.0) - 1.0)
    freqs = torch.linspace(0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    fb = torch.clamp(torch.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), min=0)
    return fb.T.float()


class MelFrontEnd(nn.Module):
    """Audio (B, samples) -> (B, frames, 32) log-mel, frames of 512 every 160 samples (no padding)."""

    def __init__(self):
        super().__init__()
        n = torch.arange(NFFT, dtype=torch.float64)
        k = torch.arange(NFFT // 2 + 1, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / NFFT)
        ang = 2 * math.pi * k[:, None] * n[None, :] / NFFT
        basis = torch.cat([torch.cos(ang), -torch.sin(ang)]) * window  # (2*257, 512): windowed DFT
        self.register_buffer("dft", basis.float()[:, None, :])
        self.register_buffer("mel", mel_filterbank())

    def forward(self, audio):
        spec = torch.nn.functional.conv1d(audio[:, None, :], self.dft, stride=HOP)  # (B, 514, frames)
        re, im = spec.chunk(2, dim=1)
        power = (re * re + im * im).transpose(1, 2)  # (B, frames, 257)
        mel = power @ self.mel
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10)) / 10.0 + 2.0


class SpeechEmbedding(nn.Module):
    """(B, 76, 32) mel window -> (B, 96)."""

    def __init__(self):
        super().__init__()
        chans = [1, 24, 48, 72, 96]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans, chans[1:]))
        self.act, self.pool = nn.LeakyReLU(0.2), nn.MaxPool2d(2)
        self.out = nn.Conv2d(96, NEMB, (4, 2))

    def forward(self, x):
        x = x[:, None]
        for conv in self.convs:
            x = self.pool(self.act(conv(x)))  # 76x32 -> 38x16 -> 19x8 -> 9x4 -> 4x2
        return self.out(x).flatten(1)


class FCNBlock(nn.Module):  # openwakeword.train.Model(model_type="dnn")'s block
    def __init__(self, layer_dim):
        super().__init__()
        self.fcn_layer, self.relu, self.layer_norm = nn.Linear(layer_dim, layer_dim), nn.ReLU(), nn.LayerNorm(layer_dim)

    def forward(self, x):
        return self.relu(self.layer_norm(self.fcn_layer(x)))


class DnnHead(nn.Module):  # openwakeword.train.Model(model_type="dnn").model, n_classes=1
    def __init__(self, input_shape=(NFEAT, NEMB), layer_dim=128, n_blocks=1):
        super().__init__()
        self.flatten = nn.Flatten()
        self.layer1 = nn.Linear(input_shape[0] * input_shape[1], layer_dim)
        self.relu1, self.layernorm1 = nn.ReLU(), nn.LayerNorm(layer_dim)
        self.blocks = nn.ModuleList([FCNBlock(layer_dim) for _ in range(n_blocks)])
        self.last_layer, self.last_act = nn.Linear(layer_dim, 1), nn.Sigmoid()

    def forward(self, x):
        x = self.relu1(self.layernorm1(self.layer1(self.flatten(x))))
        for block in self.blocks:
            x = block(x)
        return self.last_act(self.last_layer(x))


class RnnHead(nn.Module):  # openwakeword.train.Model(model_type="rnn").model, n_classes=1
    def __init__(self, input_shape=(NFEAT, NEMB)):
        super().__init__()
        self.layer1 = nn.LSTM(input_shape[-1], 64, num_layers=2, bidirectional=True, batch_first=True, dropout=0.0)
        self.layer2, self.layer3 = nn.Linear(64 * 2, 1), nn.Sigmoid()

    def forward(self, x):
        out, h = self.layer1(x)
        return self.layer3(self.layer2(out[:, -1]))


# ---- stages: (*inputs, *state) -> (*outputs, *new_state) ----
class FrontEndStage(nn.Module):
    def __init__(self, mel: MelFrontEnd):
        super().__init__()
        self.mel = mel

    def forward(self, chunk, tail):  # (B, 1280), (B, 480) -> (B, 8, 32), (B, 480)
        audio = torch.cat([tail, chunk], dim=1)
        return self.mel(audio), audio[:, -TAIL:]


class EmbeddingStage(nn.Module):
    def __init__(self, embedding: SpeechEmbedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, frames, mel_buffer):  # (B, 8, 32), (B, 68, 32) -> (B, 96), (B, 68, 32)
        window = torch.cat([mel_buffer, frames], dim=1)
        return self.embedding(window), window[:, STRIDE:]


class HeadsStage(nn.Module):
    def __init__(self, dnn: nn.Module, rnn: nn.Module):
        super().__init__()
        self.dnn, self.rnn = dnn, rnn

    def forward(self, emb, emb_buffer):  # (B, 96), (B, 15, 96) -> (B, 1), (B, 1), (B, 15, 96)
        feats = torch.cat([emb_buffer, emb[:, None]], dim=1)
        return self.dnn(feats), self.rnn(feats), feats[:, 1:]


class Detector(nn.Module):
    """The three networks; `whole_clip` runs them on a whole clip with the streaming framing."""

    def __init__(self, dnn: nn.Module | None = None, rnn: nn.Module | None = None):
        super().__init__()
        self.mel, self.embedding = MelFrontEnd(), SpeechEmbedding()
        self.dnn, self.rnn = dnn or DnnHead(), rnn or RnnHead()

    @torch.no_grad()
    def whole_clip(self, audio):  # (1, n*1280) -> dnn (n, 1), rnn (n, 1)
        n = audio.shape[1] // CHUNK
        frames = self.mel(torch.cat([torch.zeros(1, TAIL), audio[:, :n * CHUNK]], dim=1))[0]  # (8n, 32)
        frames = torch.cat([torch.ones(WINDOW - STRIDE, NMELS), frames])
        emb = self.embedding(torch.stack([frames[STRIDE * k:STRIDE * k + WINDOW] for k in range(n)]))
        emb = torch.cat([torch.zeros(NFEAT - 1, NEMB), emb])
        feats = torch.stack([emb[k:k + NFEAT] for k in range(n)])
        return self.dnn(feats), self.rnn(feats)

    def stream(self):
        import fx2mlx

        s = fx2mlx.Stream(chunk=CHUNK, rate=RATE)
        s.add("frontend", FrontEndStage(self.mel), (torch.randn(1, CHUNK) * 1000,), state={"tail": torch.zeros(1, TAIL)})
        s.add("embedding", EmbeddingStage(self.embedding), (torch.randn(1, FRAMES_PER_CHUNK, NMELS),),
              state={"mel_buffer": torch.ones(1, WINDOW - STRIDE, NMELS)})
        s.add("heads", HeadsStage(self.dnn, self.rnn), (torch.randn(1, NEMB),),
              state={"emb_buffer": torch.zeros(1, NFEAT - 1, NEMB)})
        return s


def make_stream(seed: int = 0):
    """Factory for `fx2mlx compile fx2mlx.twins.openwakeword:make_stream -o OUT` (random weights)."""
    torch.manual_seed(seed)
    return Detector().eval().stream()
