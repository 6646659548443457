"""PyTorch twins of models published only as ONNX/TFLite files, written so that fx2mlx can compile them."""
