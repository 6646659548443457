"""Decoder LLMs: compile a Hugging Face causal-LM directory with a KV cache, and generate from it.

    fx2mlx compile LLAMA_DIR -o OUT [--quantize 4]
    fx2mlx generate OUT --prompt-ids 1,2,3 --max-tokens 32
"""
from .api import GenerationModel, generate, load_llm  # noqa: F401
