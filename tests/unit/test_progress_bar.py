"""The `recon run` progress display: stage and percent, never backwards."""

from __future__ import annotations

import io

from recon_api.constants import Stage
from recon_runner.local.progress_bar import ProgressBar


def test_log_mode_prints_each_stage_and_the_end() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, interactive=False)
    bar(Stage.FUSE, 0.0, "loading")
    bar(Stage.FUSE, 0.5, "integrating")  # same stage, too soon: not printed
    bar(Stage.REFINE, 0.5, "iteration 5/10")
    bar.finish("done")
    assert out.getvalue().splitlines() == [
        "  5% fuse: loading",
        " 50% refine: iteration 5/10",
        "100% done",
    ]


def test_terminal_mode_redraws_and_never_goes_back() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, interactive=True)
    bar(Stage.TEXTURE, 1.0, "texture done")
    bar(Stage.REFINE, 0.0, "late report")
    bar.close()
    frames = out.getvalue().split("\r")[1:]
    assert all(" 90% " in frame for frame in frames)
    assert out.getvalue().endswith("\n")
