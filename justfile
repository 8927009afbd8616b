# Shortcuts for those who have `just`; each recipe is the README command.

# Sync a simulated partner into demo/weir.db, end to end.
demo:
    cargo xtask demo

# Everything CI runs: format check, clippy, all tests.
test:
    cargo xtask test

# Weir vs a native Rust baseline, side by side.
bench *ARGS:
    cargo xtask bench {{ARGS}}
