"""Synthetic captures of known objects, for the demo, the benchmark and the tests."""

from recon_runner.synthetic.objects import (
    OBJECT_NAMES,
    SyntheticObject,
    make_object,
    sphere_object,
)
from recon_runner.synthetic.views import (
    DepthNoise,
    Lighting,
    RenderedView,
    orbit_cameras,
    render_views,
)
from recon_runner.synthetic.writer import (
    PHONE,
    PHONE_NOISE,
    CaptureStyle,
    choose_depth_unit,
    write_capture,
    write_views,
)

__all__ = [
    "OBJECT_NAMES",
    "PHONE",
    "PHONE_NOISE",
    "CaptureStyle",
    "DepthNoise",
    "Lighting",
    "RenderedView",
    "SyntheticObject",
    "choose_depth_unit",
    "make_object",
    "orbit_cameras",
    "render_views",
    "sphere_object",
    "write_capture",
    "write_views",
]
