"""`eval "$(recon dev env)"` must set exactly these values, whatever the paths contain."""

from __future__ import annotations

import subprocess
from pathlib import Path

from recon_stack.shell_env import env_lines


def test_eval_of_the_env_lines_sets_the_shell_up(tmp_path: Path) -> None:
    state = tmp_path / "my stack's dir"
    lines = env_lines(state / "kubeconfig", state / "bin", "127.0.0.1:9000", "ak", "s$cr'et")
    script = "\n".join(lines) + (
        '\nprintf "%s\\n" "$KUBECONFIG" "${PATH%%:*}" "$MINIO_ENDPOINT" '
        '"$MINIO_ACCESS_KEY" "$MINIO_SECRET_KEY" "$PATH"'
    )
    out = subprocess.run(
        ["bash", "-c", 'eval "$1"', "-", script],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[:5] == [
        str(state / "kubeconfig"),
        str(state / "bin"),
        "127.0.0.1:9000",
        "ak",
        "s$cr'et",
    ]
    assert out[5] == f"{state / 'bin'}:/usr/bin:/bin"
