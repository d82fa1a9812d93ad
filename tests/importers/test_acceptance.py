"""An imported capture is one `recon run` and the operator accept: the runner's loader
decodes it and the operator's header checks find no problem, for every format.

This is written against DESIGN.md's widened input layout (JPEG colour, depth at its own
resolution with depth_w/depth_h, confidence maps): the importers write that layout, so the
test holds once the loader and the header checks read it too.
"""

from __future__ import annotations

import json
from pathlib import Path

from recon_operator.validation import Limits, header_reads, load_transforms, validate_capture
from recon_runner.errors import InvalidInputError
from recon_runner.importers.capture_writer import write_capture
from recon_runner.stages.capture import load_capture

from tests.support.importer_sources import WRITERS, source_for

LIMITS = Limits(max_file_bytes=20 * 1024**2, max_total_bytes=200 * 1024**2)
HEADER_BYTES = 64 * 1024  # enough for a JPEG's SOF behind its EXIF and tables


def operator_problems(root: Path) -> list[str]:
    """The operator's admission checks over a folder, as capture_reader feeds them from
    storage: a listing with sizes, transforms.json, the first bytes of the files named."""
    listing = {
        p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()
    }
    data = (root / "transforms.json").read_bytes()
    transforms = load_transforms(data, len(data), LIMITS)
    views = len(json.loads(data)["frames"])
    headers = {
        path: (root / path).read_bytes()[:HEADER_BYTES]
        for path in header_reads(transforms, listing, views)
    }
    problems = validate_capture(transforms, listing, headers, expected_views=views, limits=LIMITS)
    return [str(p) for p in problems]


def test_every_imported_capture_is_accepted_by_the_runner_and_the_operator(
    tmp_path: Path,
) -> None:
    refused: dict[str, list[str]] = {}
    for name, write in sorted(WRITERS.items()):
        written = write(tmp_path / f"{name}-source")
        out = tmp_path / f"{name}-capture"
        write_capture(source_for(name, written), out)
        problems = []
        try:
            capture = load_capture(out, expected_views=len(written.seen))
            assert len(capture.views) == len(written.seen)
        except InvalidInputError as e:
            problems.append(f"runner: {e}")
        problems.extend(f"operator: {p}" for p in operator_problems(out))
        if problems:
            refused[name] = problems
    report = [f"{name}: {'; '.join(problems[:3])}" for name, problems in refused.items()]
    assert not refused, "refused imported captures:\n" + "\n".join(report)
