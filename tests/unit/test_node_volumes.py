"""Mount paths of emptyDir volumes are rewritten to per-pod directories."""

from __future__ import annotations

from pathlib import Path

from recon_stack.node.volumes import mount_dirs, rewrite_path, volume_dirs

POD = {
    "spec": {
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "work", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "kube-api-access-abcde", "projected": {"sources": []}},
        ]
    }
}


def test_each_empty_dir_gets_its_own_directory_and_other_volumes_none(tmp_path: Path) -> None:
    dirs = volume_dirs(POD, tmp_path)
    assert dirs == {"scratch": tmp_path / "scratch", "work": tmp_path / "work"}


def test_env_values_and_paths_under_mounts_point_into_the_volume(tmp_path: Path) -> None:
    container = {
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "work", "mountPath": "/work/"},
            {"name": "work", "mountPath": "/work/cache", "subPath": "c"},
            {"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/kubernetes.io"},
        ]
    }
    mounts = mount_dirs(container, volume_dirs(POD, tmp_path))
    assert rewrite_path("/tmp", mounts) == str(tmp_path / "scratch")
    assert rewrite_path("/tmp/", mounts) == str(tmp_path / "scratch")
    assert rewrite_path("/tmp/a/b.txt", mounts) == str(tmp_path / "scratch" / "a" / "b.txt")
    assert rewrite_path("/work/out", mounts) == str(tmp_path / "work" / "out")
    # The nested mount wins over its parent.
    assert rewrite_path("/work/cache/x", mounts) == str(tmp_path / "work" / "c" / "x")
    # Not mounts: unchanged.
    for value in ("/tmpfoo", "/var/run/secrets/kubernetes.io/token", "tmp", "s3://b/tmp", ""):
        assert rewrite_path(value, mounts) == value
