"""The compiler: capture -> IR -> passes -> lowering (overrides, then YAML tables) -> emission."""
