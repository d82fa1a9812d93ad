"""`recon import`: captures from phone apps, sensor datasets and nerfstudio, converted to
the DESIGN.md input layout.

One module per source format reads its files into `Frame`s in the layout's conventions;
`capture_writer` writes them, all or nothing. FORMATS maps each format's name (the
`recon import FORMAT` word) to its module, whose `add_arguments` and `source_from_args`
the CLI calls.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from recon_runner.importers import nerfstudio, polycam, record3d, redwood, scannet, tum
from recon_runner.importers.capture_writer import Source


class Importer(Protocol):
    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def source_from_args(self, src: Path, args: argparse.Namespace) -> Source: ...


_MODULES: tuple[ModuleType, ...] = (polycam, record3d, nerfstudio, scannet, tum, redwood)
FORMATS: dict[str, Importer] = {m.NAME: cast(Importer, m) for m in _MODULES}

__all__ = ["FORMATS", "Importer"]
