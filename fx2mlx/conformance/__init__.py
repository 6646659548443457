"""Op conformance tools: differential op cases (`opcases`), the batched op checker (`opcheck`), PyTorch's
OpInfo sweep (`opinfo`), the C++ twin of the checker (`cppcheck`) and the coverage report (`coverage`,
`fx2mlx ops`). Each is runnable as `python -m fx2mlx.conformance.<name>`."""
