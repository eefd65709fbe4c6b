"""pytest fixtures for testing code that uses nemo-sync (loaded through the ``pytest11`` entry point).

Imports stay inside the fixtures so projects that merely have nemo-sync installed pay nothing
when pytest starts.
"""
