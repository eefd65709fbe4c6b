"""The NemoVideo API emulator: the whole API as a stateful in-process server."""
