"""Heads on a Whisper encoder: a user's program of HF's WhisperEncoder plus small heads (a CTC Linear over the
vocabulary, an utterance classifier) compiles as one program (fx2mlx.Program) whose heads share the encoder run;
logits equal PyTorch's within 1e-4 (float32; measured 4.5e-6 on CTC logits of magnitude 9.3, 9e-8 on the
classifier); greedy CTC
decoding (blank collapse) of the MLX logits equals the same decoding of PyTorch's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as T

VOCAB, BLANK = 40, 0


class Heads(torch.nn.Module):
    def __init__(self, d_model, vocab, classes=5):
        super().__init__()
        self.ctc = torch.nn.Linear(d_model, vocab)
        self.classify = torch.nn.Sequential(torch.nn.Linear(d_model, 32), torch.nn.GELU(), torch.nn.Linear(32, classes))

    def forward(self, hidden):
        return self.ctc(hidden), self.classify(hidden.mean(dim=1))


def _encoder(n_mels=80, positions=200):
    cfg = T.WhisperConfig(num_mel_bins=n_mels, d_model=64, encoder_layers=2, encoder_attention_heads=4,
                          encoder_ffn_dim=128, max_source_positions=positions, decoder_layers=1, decoder_attention_heads=4, vocab_size=64,
                          pad_token_id=0, bos_token_id=1, eos_token_id=1, decoder_start_token_id=2)
    torch.manual_seed(0)
    enc = T.WhisperForConditionalGeneration(cfg).get_encoder().eval()
    with torch.no_grad():
        for n, p in enc.named_parameters():
            if p.dim() >= 2 and "embed_positions" not in n:
                p.normal_(0, 1.0 / p.shape[-1] ** 0.5)
    return enc


class Encoder(torch.nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, input_features):
        return self.enc(input_features=input_features).last_hidden_state


def test_ctc_head_program_equals_pytorch(tmp_path):
    import fx2mlx
    from fx2mlx.runtime.audio import ctc_greedy

    torch.manual_seed(1)
    encoder, heads = Encoder(_encoder()).eval(), Heads(64, VOCAB).eval()
    with torch.no_grad():
        heads.ctc.weight.mul_(4.0)  # confident per-frame tokens: the CTC draft is not all blanks
    feats = torch.randn(2, 80, 400)
    with torch.no_grad():
        hidden = encoder(feats)
        ref_ctc, ref_cls = heads(hidden)
    assert ref_ctc.abs().max() > 1.0 and ref_cls.abs().max() > 0.1  # not near-zero outputs
    prog = fx2mlx.Program().add("encoder", encoder, (feats,)).add("heads", heads, (hidden,))
    compiled = fx2mlx.convert(prog, out_dir=tmp_path / "out")
    h = compiled.encoder(feats.numpy())
    ctc, cls = compiled.heads(h)  # both heads from one encoder run
    print("max |MLX - PyTorch| ctc", np.abs(np.array(ctc) - ref_ctc.numpy()).max(), "of", ref_ctc.abs().max().item(),
          "classifier", np.abs(np.array(cls) - ref_cls.numpy()).max())
    assert np.abs(np.array(ctc) - ref_ctc.numpy()).max() <= 1e-4
    assert np.abs(np.array(cls) - ref_cls.numpy()).max() <= 1e-4
    draft = ctc_greedy(ctc, blank=BLANK)
    assert draft == [_collapse(r) for r in ref_ctc.argmax(-1).tolist()]
    assert all(len(d) > 3 for d in draft)


def _collapse(row):
    out = [t for i, t in enumerate(row) if (i == 0 or t != row[i - 1])]
    return [t for t in out if t != BLANK]


def test_ctc_greedy_known_answer():
    import mlx.core as mx

    from fx2mlx.runtime.audio import ctc_greedy

    best = [1, 1, 0, 1, 2, 2, 0, 0, 3, 3]
    logits = mx.array(np.eye(4, dtype=np.float32)[best])
    assert ctc_greedy(logits, blank=0) == [1, 1, 2, 3]
    assert ctc_greedy(logits[None], blank=0) == [[1, 1, 2, 3]]
    assert ctc_greedy(logits, blank=3) == [1, 0, 1, 2, 0]


if __name__ == "__main__":
    pytest.main([__file__])
