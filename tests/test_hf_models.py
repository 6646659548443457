"""Hugging Face architectures nobody wrote a recipe for: tiny random-weight models saved with
save_pretrained, compiled from the directory (the real loading path), compared with PyTorch.
Tolerance 1e-4 (float32; see test_zoo_compile.py)."""
import pytest
import torch
import transformers as T

from fx2mlx.api import load
from fx2mlx.compiler.capture import capture, load_source
from fx2mlx.recipes import compile_captured
from helpers import flatten, max_abs_diff

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
SEQ2SEQ = dict(vocab_size=128, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
               decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64)
CONFIGS = {
    "llama": lambda: (T.LlamaConfig(vocab_size=128, num_key_value_heads=2, **SMALL), T.LlamaForCausalLM),
    "qwen2": lambda: (T.Qwen2Config(vocab_size=128, num_key_value_heads=2, tie_word_embeddings=True, **SMALL),
                      T.Qwen2ForCausalLM),
    "mistral": lambda: (T.MistralConfig(vocab_size=128, num_key_value_heads=2, sliding_window=4, **SMALL),
                        T.MistralForCausalLM),
    "gemma": lambda: (T.GemmaConfig(vocab_size=128, num_key_value_heads=1, head_dim=8, **SMALL), T.GemmaForCausalLM),
    "phi3": lambda: (T.Phi3Config(vocab_size=128, num_key_value_heads=2, pad_token_id=0, **SMALL), T.Phi3ForCausalLM),
    "t5": lambda: (T.T5Config(vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                              feed_forward_proj="gated-gelu", tie_word_embeddings=False), T.T5ForConditionalGeneration),
    "m2m100": lambda: (T.M2M100Config(scale_embedding=True, max_position_embeddings=64, **SEQ2SEQ),
                       T.M2M100ForConditionalGeneration),
    "marian": lambda: (T.MarianConfig(activation_function="swish", max_position_embeddings=64, pad_token_id=0,
                                      decoder_start_token_id=0, **SEQ2SEQ), T.MarianMTModel),
    "whisper": lambda: (T.WhisperConfig(num_mel_bins=80, max_source_positions=50, max_target_positions=32,
                                        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                                        **SEQ2SEQ), T.WhisperForConditionalGeneration),
    "distilbert": lambda: (T.DistilBertConfig(vocab_size=128, dim=32, n_layers=2, n_heads=4, hidden_dim=64),
                           T.DistilBertModel),
    "roberta": lambda: (T.RobertaConfig(vocab_size=128, **SMALL), T.RobertaModel),
    "resnet": lambda: (T.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic"),
                       T.ResNetModel),
    "convnext": lambda: (T.ConvNextConfig(hidden_sizes=[16, 32], depths=[1, 1], num_stages=2, image_size=32),
                         T.ConvNextModel),
    "clip_vision": lambda: (T.CLIPVisionConfig(image_size=32, patch_size=8, **SMALL), T.CLIPVisionModel),
    "wav2vec2": lambda: (T.Wav2Vec2Config(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
                                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4), T.Wav2Vec2Model),
    "bart": lambda: (T.BartConfig(max_position_embeddings=64, **SEQ2SEQ), T.BartForConditionalGeneration),
    "bloom": lambda: (T.BloomConfig(vocab_size=128, hidden_size=32, n_layer=2, n_head=4), T.BloomForCausalLM),
    "falcon": lambda: (T.FalconConfig(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4),
                       T.FalconForCausalLM),
    "gemma2": lambda: (T.Gemma2Config(vocab_size=128, num_key_value_heads=2, head_dim=8, sliding_window=4, **SMALL),
                       T.Gemma2ForCausalLM),
    "qwen3": lambda: (T.Qwen3Config(vocab_size=128, num_key_value_heads=2, head_dim=8, **SMALL), T.Qwen3ForCausalLM),
    "albert": lambda: (T.AlbertConfig(vocab_size=128, embedding_size=16, **SMALL), T.AlbertModel),
    "deberta_v2": lambda: (T.DebertaV2Config(vocab_size=128, **SMALL), T.DebertaV2Model),
    "swin": lambda: (T.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 4],
                                  window_size=4), T.SwinModel),
    "segformer": lambda: (T.SegformerConfig(image_size=32, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1],
                                            hidden_sizes=[16, 32], num_attention_heads=[1, 2], patch_sizes=[7, 3],
                                            strides=[4, 2], decoder_hidden_size=32), T.SegformerForSemanticSegmentation),
    "mamba": lambda: (T.MambaConfig(vocab_size=128, hidden_size=32, state_size=4, num_hidden_layers=2,
                                    intermediate_size=64), T.MambaForCausalLM),
    "hubert": lambda: (T.HubertConfig(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
                                      num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4), T.HubertModel),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_hf_architecture_from_directory(name, tmp_path):
    cfg, cls = CONFIGS[name]()
    torch.manual_seed(0)
    cls(cfg).eval().save_pretrained(tmp_path / "model")
    src = load_source(str(tmp_path / "model"))
    captured = capture(src.module, src.args, src.kwargs, description=src.description)
    compile_captured(captured, tmp_path / "out")
    compiled = load(tmp_path / "out")
    got = flatten(compiled(**{k: v.numpy() for k, v in src.kwargs.items() if isinstance(v, torch.Tensor)}))
    with torch.no_grad():
        ref = flatten(src.module(**src.kwargs))
    assert len(got) == len(ref)
    for i, (r, g) in enumerate(zip(ref, got)):
        assert max_abs_diff(r, g) <= 1e-4, f"output {i}"
