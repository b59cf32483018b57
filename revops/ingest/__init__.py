"""Uploads of CRM/billing exports: read, map, parse, validate, load in one transaction, undo."""
from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revops.ingest.load import Preview, UploadResult, ingest_file, load, preview, undo, upload_log

__all__ = ["Preview", "UploadResult", "ingest_file", "load", "preview", "undo", "upload_log"]


def __getattr__(name: str) -> Any:
    """The upload API, imported on first use: the CLI starts reading a file before DuckDB and the schema load."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    api = importlib.import_module("revops.ingest.load")
    globals().update({n: getattr(api, n) for n in __all__})
    return globals()[name]


class _Package(types.ModuleType):
    """This package, whose name `load` stays the loading function when the submodule of that name is imported."""

    def __setattr__(self, name: str, value: object) -> None:
        # Importing revops.ingest.load binds the package's `load` to the submodule; the function wins, as it
        # did when this package imported its API eagerly.
        if name == "load" and isinstance(value, types.ModuleType):
            value = value.load
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
