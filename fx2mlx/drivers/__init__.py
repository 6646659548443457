"""Host drivers: the program-level code vendored into OUT/program.py (imports only mlx and the standard
library). A driver file may name runtime modules it builds on in a first line `# runtime: a b`; the
writer vendors those before it. Each driver defines `load(path=None)` returning the loaded program."""
