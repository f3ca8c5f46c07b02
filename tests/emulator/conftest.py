"""The WeCom emulator's tests and the `world` fixture's own."""
