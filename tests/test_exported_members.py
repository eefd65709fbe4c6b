"""`__all__` is exactly the public surface, and every name in it resolves."""

from __future__ import annotations

import types

import nemo_sync


def test_all_is_sorted_unique_and_resolvable() -> None:
    names = nemo_sync.__all__
    assert list(names) == sorted(names, key=str.casefold) or list(names) == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(nemo_sync, name) is not None, name


def test_every_public_attribute_is_in_all() -> None:
    public = {
        name
        for name, value in vars(nemo_sync).items()
        if name.isidentifier()
        and not name.startswith("_")
        and not isinstance(value, types.ModuleType)
    }
    # Submodules (errors, testing, draft, emulator...) are reachable but are not names in __all__.
    assert public <= set(nemo_sync.__all__)


def test_errors_are_one_tree() -> None:
    for name in nemo_sync.errors.__all__:
        cls = getattr(nemo_sync.errors, name)
        assert issubclass(cls, nemo_sync.NemoError)
        assert getattr(nemo_sync, name) is cls
