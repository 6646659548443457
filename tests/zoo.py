"""Test model zoo for fx2mlx.

Every factory returns ``(module, args)`` or ``(module, args, kwargs)``: the module is in
eval mode with deterministic random weights (each factory seeds ``torch.manual_seed``)
and the example inputs are small tensors. ``ZOO`` maps a name to its factory.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import nn


# ---------------------------------------------------------------------------
# Plain torch models
# ---------------------------------------------------------------------------


def mlp():
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Linear(16, 32),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(32, 32),
        nn.GELU(),
        nn.Dropout(0.1),
        nn.Linear(32, 4),
    ).eval()
    x = torch.randn(2, 16)
    return m, (x,)


class _CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1, groups=2)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 16, kernel_size=1, bias=False)
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(x)
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.conv3(x))
        x = self.gap(x)
        x = torch.flatten(x, 1)
        return self.head(x)


def cnn():
    torch.manual_seed(0)
    m = _CNN()
    with torch.no_grad():
        for bn in (m.bn1, m.bn2):
            c = bn.num_features
            bn.running_mean.copy_(torch.randn(c) * 0.5)
            bn.running_var.copy_(torch.rand(c) + 0.5)
            bn.weight.copy_(torch.randn(c) * 0.2 + 1.0)
            bn.bias.copy_(torch.randn(c) * 0.1)
    m.eval()
    x = torch.randn(2, 3, 16, 16)
    return m, (x,)


class Snake1d(nn.Module):
    """Snake activation (as in DAC / BigVGAN / Kokoro's iSTFTNet)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x):
        alpha = self.alpha
        return x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)


def _old_weight_norm(module: nn.Module) -> nn.Module:
    """``torch.nn.utils.weight_norm`` (hook based), or the parametrization if it is gone."""
    old = getattr(nn.utils, "weight_norm", None)
    if old is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                return old(module)
        except Exception:  # pragma: no cover - depends on the torch version
            pass
    return nn.utils.parametrizations.weight_norm(module)


class _Conv1dStack(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad = nn.ReflectionPad1d(3)
        self.conv_in = nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 8, kernel_size=7))
        self.snake1 = Snake1d(8)
        self.up = _old_weight_norm(
            nn.ConvTranspose1d(8, 6, kernel_size=4, stride=2, padding=1)
        )
        self.snake2 = Snake1d(6)
        self.conv_out = nn.Conv1d(6, 2, kernel_size=3, padding=2, dilation=2)

    def forward(self, x):
        x = self.conv_in(self.pad(x))
        x = self.snake1(x)
        x = self.up(x)
        x = self.snake2(x)
        return torch.tanh(self.conv_out(x))


def conv1d_stack():
    torch.manual_seed(0)
    m = _Conv1dStack()
    with torch.no_grad():
        m.snake1.alpha.copy_(torch.rand(1, 8, 1) + 0.5)
        m.snake2.alpha.copy_(torch.rand(1, 6, 1) + 0.5)
    m.eval()
    x = torch.randn(1, 4, 32)
    return m, (x,)


class _BiLSTMClassifier(nn.Module):
    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.batch_first = batch_first
        self.lstm = nn.LSTM(8, 12, num_layers=2, bidirectional=True, batch_first=batch_first)
        self.head = nn.Linear(24, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        last = out[:, -1] if self.batch_first else out[-1]
        return self.head(last)


def bilstm_classifier(batch_first: bool = True):
    torch.manual_seed(0)
    m = _BiLSTMClassifier(batch_first).eval()
    x = torch.randn(2, 7, 8) if batch_first else torch.randn(7, 2, 8)
    return m, (x,)


# ---------------------------------------------------------------------------
# openWakeWord-style heads (openwakeword.train.Model equivalents)
# ---------------------------------------------------------------------------


class OWWDense(nn.Module):
    def __init__(self, input_shape=(16, 96), layer_dim: int = 128):
        super().__init__()
        self.flatten = nn.Flatten()
        self.layer1 = nn.Linear(input_shape[0] * input_shape[1], layer_dim)
        self.layernorm1 = nn.LayerNorm(layer_dim)
        self.relu1 = nn.ReLU()
        self.layer2 = nn.Linear(layer_dim, layer_dim)
        self.layernorm2 = nn.LayerNorm(layer_dim)
        self.relu2 = nn.ReLU()
        self.last_layer = nn.Linear(layer_dim, 1)
        self.last_act = nn.Sigmoid()

    def forward(self, x):
        x = self.relu1(self.layernorm1(self.layer1(self.flatten(x))))
        x = self.relu2(self.layernorm2(self.layer2(x)))
        return self.last_act(self.last_layer(x))


class OWWBiLSTM(nn.Module):
    def __init__(self, input_shape=(16, 96), hidden: int = 64):
        super().__init__()
        self.layer1 = nn.LSTM(input_shape[-1], hidden, num_layers=2, bidirectional=True,
                              batch_first=True)
        self.layer2 = nn.Linear(2 * hidden, 1)
        self.layer3 = nn.Sigmoid()

    def forward(self, x):
        out, _ = self.layer1(x)
        return self.layer3(self.layer2(out[:, -1]))


def _randomize_layernorms(m: nn.Module):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.LayerNorm) and mod.elementwise_affine:
                mod.weight.copy_(torch.randn_like(mod.weight) * 0.2 + 1.0)
                mod.bias.copy_(torch.randn_like(mod.bias) * 0.1)


def oww_dense():
    torch.manual_seed(0)
    m = OWWDense()
    _randomize_layernorms(m)
    m.eval()
    x = torch.randn(1, 16, 96)
    return m, (x,)


def oww_bilstm():
    torch.manual_seed(0)
    m = OWWBiLSTM().eval()
    x = torch.randn(1, 16, 96)
    return m, (x,)


# ---------------------------------------------------------------------------
# Tiny Hugging Face transformers (random weights from config)
# ---------------------------------------------------------------------------


def gpt2_tiny():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=128, n_positions=32, n_embd=32, n_layer=2, n_head=4,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
        bos_token_id=0, eos_token_id=0,
    )
    try:
        m = GPT2LMHeadModel._from_config(cfg, attn_implementation="sdpa")
    except Exception:  # pragma: no cover
        m = GPT2LMHeadModel._from_config(cfg, attn_implementation="eager")
    m.eval()
    input_ids = torch.randint(0, cfg.vocab_size, (2, 8))
    attention_mask = torch.ones(2, 8, dtype=torch.long)
    attention_mask[1, :2] = 0  # left padding on the second row
    return m, (), {"input_ids": input_ids, "attention_mask": attention_mask}


def bert_tiny():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=32, type_vocab_size=2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    m = BertModel(cfg).eval()
    input_ids = torch.randint(0, cfg.vocab_size, (2, 8))
    attention_mask = torch.ones(2, 8, dtype=torch.long)
    attention_mask[1, 6:] = 0  # right padding on the second row
    token_type_ids = torch.zeros(2, 8, dtype=torch.long)
    token_type_ids[:, 4:] = 1
    return m, (), {"input_ids": input_ids, "attention_mask": attention_mask,
                   "token_type_ids": token_type_ids}


def vit_tiny():
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    cfg = ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    m = ViTModel(cfg, add_pooling_layer=True).eval()
    pixel_values = torch.randn(1, 3, 32, 32)
    return m, (), {"pixel_values": pixel_values}


ZOO = {
    "mlp": mlp,
    "cnn": cnn,
    "conv1d_stack": conv1d_stack,
    "bilstm_bf": functools.partial(bilstm_classifier, batch_first=True),
    "bilstm_tf": functools.partial(bilstm_classifier, batch_first=False),
    "oww_dense": oww_dense,
    "oww_bilstm": oww_bilstm,
    "gpt2_tiny": gpt2_tiny,
    "bert_tiny": bert_tiny,
    "vit_tiny": vit_tiny,
}
