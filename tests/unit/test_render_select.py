import pytest
import torch
from recon_runner.render import RENDERER_ENV, get_renderer


def test_auto_picks_the_torch_backend_without_cuda(monkeypatch):
    monkeypatch.delenv(RENDERER_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_renderer().name == "torch"


def test_auto_respects_an_explicit_cpu_device(monkeypatch):
    monkeypatch.delenv(RENDERER_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_renderer("auto", device="cpu").name == "torch"


def test_environment_forces_a_backend(monkeypatch):
    monkeypatch.setenv(RENDERER_ENV, "torch")
    assert get_renderer("nvdiffrast").name == "torch"


def test_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setenv(RENDERER_ENV, "opengl")
    with pytest.raises(ValueError, match="opengl"):
        get_renderer()
