"""The two Dockerfiles, checked without a container engine.

A Dockerfile that names a missing path, an entrypoint that is not installed, or an extra
that drags torch into the operator image fails only at `docker build` or at pod start on
a GPU cluster; these checks catch that here, against the repository and pyproject.toml.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import inspect
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from recon_operator.jobspec import RUNNER_UID

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = ("Dockerfile.operator", "Dockerfile.runner")
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    logical: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append((start, pending + stripped))
        pending = ""
    for number, text in logical:
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages and keyword == "ARG":
            key, _, value = args.partition("=")
            global_args[key.strip()] = value.strip()
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, args.strip(), number))
    return global_args, stages


def expand(text: str, variables: dict[str, str]) -> str:
    """``${NAME}`` replaced by its ARG default, again until none is left (an ARG's default
    may name earlier ARGs, as BUILD_BASE names CUDA_VERSION)."""
    for _ in range(10):
        expanded = re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], text)
        if expanded == text:
            return text
        text = expanded
    raise AssertionError(f"ARG defaults refer to each other in a loop: {text}")


def exec_form(instruction: Instruction) -> list[str]:
    import json

    value = json.loads(instruction.args)
    assert isinstance(value, list), f"line {instruction.line}: use the exec (JSON) form"
    return [str(v) for v in value]


def final_stage(name: str) -> Stage:
    return parse(ROOT / name)[1][-1]


def installed_extras(name: str) -> set[str]:
    """The extras of the project (`.[...]`) that a Dockerfile's pip installs name."""
    extras: set[str] = set()
    for stage in parse(ROOT / name)[1]:
        for run in stage.all("RUN"):
            for spec in re.findall(r"""["']?\.\[([\w,\s-]+)\]["']?""", run.args):
                extras |= {e.strip() for e in spec.split(",")}
    return extras


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def distribution_closure(extra: str) -> set[str]:
    """What `pip install .[extra]` brings in: the core dependencies, the extra's, and
    theirs, as installed here."""
    from importlib import metadata

    todo = list(requirement_names(PYPROJECT["project"]["dependencies"]))
    todo += requirement_names(PYPROJECT["project"]["optional-dependencies"][extra])
    seen: set[str] = set()
    while todo:
        name = todo.pop().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        # Only unconditional requirements: extras and platform markers are not pulled in.
        todo += requirement_names([r for r in requires if ";" not in r])
    return seen


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the paths used here: the last matching line wins."""
    ignored = False
    parts = relative.rstrip("/").split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        glob = glob.rstrip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, glob) for p in prefixes):
            ignored = not negate
    return ignored


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# ------------------------------------------------------------------------------ lint


@pytest.fixture(scope="module")
def hadolint() -> Path:
    found = shutil.which("hadolint", path=str(Path(__file__).parents[2] / ".venv" / "bin"))
    found = found or shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extra (pip install -e '.[dev]')"
    return Path(found)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_passes(hadolint: Path, name: str) -> None:
    result = subprocess.run(
        [str(hadolint), "--no-color", "--config", str(ROOT / ".hadolint.yaml"), name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_fails_on_every_finding() -> None:
    import yaml

    config = yaml.safe_load((ROOT / ".hadolint.yaml").read_text())
    assert config["failure-threshold"] in ("info", "style")
    assert not config.get("ignored"), "exceptions belong inline, next to their reason"


# ------------------------------------------------------------------- sources and paths


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_copied_path_exists_and_is_in_the_build_context(name: str) -> None:
    patterns = dockerignore()
    copies = 0
    for stage in parse(ROOT / name)[1]:
        for copy in stage.all("COPY") + stage.all("ADD"):
            words = shlex.split(copy.args)
            if any(w.startswith("--from") for w in words):
                continue
            sources = [w for w in words if not w.startswith("--")][:-1]
            for source in sources:
                copies += 1
                assert (ROOT / source).exists(), f"{name}:{copy.line}: {source} does not exist"
                assert not is_ignored(source, patterns), (
                    f"{name}:{copy.line}: {source} is excluded by .dockerignore"
                )
    assert copies


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_copied_sources_build_the_distribution(name: str) -> None:
    """setuptools needs pyproject.toml and every package directory it maps."""
    copied: set[str] = set()
    for stage in parse(ROOT / name)[1]:
        for copy in stage.all("COPY"):
            words = [w for w in shlex.split(copy.args) if not w.startswith("--")]
            copied |= {w.rstrip("/") for w in words[:-1]}
    package_dirs = PYPROJECT["tool"]["setuptools"]["package-dir"].values()
    top_dirs = {d.split("/")[0] for d in package_dirs}
    assert {"pyproject.toml", *top_dirs} <= copied


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    patterns = dockerignore()
    for path in (".venv", ".git", ".stack", "tests", "charts", "runner/x/__pycache__"):
        assert is_ignored(path, patterns), path


# ------------------------------------------------------------------------ entrypoints


@pytest.mark.parametrize(
    ("name", "subcommand"), [("Dockerfile.operator", "operator"), ("Dockerfile.runner", "runner")]
)
def test_entrypoint_is_an_installed_console_script_and_subcommand(
    name: str, subcommand: str
) -> None:
    from recon_cli.main import COMMANDS

    entrypoints = final_stage(name).all("ENTRYPOINT")
    assert len(entrypoints) == 1
    command = exec_form(entrypoints[0])
    assert command == ["recon", subcommand]
    script = PYPROJECT["project"]["scripts"][command[0]]
    module, _, function = script.partition(":")
    assert module == "recon_cli.main"
    from recon_cli import main as cli_main

    assert callable(getattr(cli_main, function))
    # The sub-command's module is a file of this repository, inside a mapped package.
    target = COMMANDS[subcommand][0]
    package, _, rest = target.partition(".")
    package_dir = ROOT / PYPROJECT["tool"]["setuptools"]["package-dir"][package]
    assert (package_dir / (rest.replace(".", "/") + ".py")).is_file(), target
    assert importlib.util.find_spec(target) is not None


# -------------------------------------------------------------- what each image holds


def test_operator_image_installs_the_operator_extra_and_no_torch() -> None:
    assert installed_extras("Dockerfile.operator") == {"operator"}
    closure = distribution_closure("operator")
    assert "kopf" in closure
    assert not {"torch", "diffrp-nvdiffrast"} & closure


def test_operator_image_installs_no_system_packages() -> None:
    for stage in parse(ROOT / "Dockerfile.operator")[1]:
        for run in stage.all("RUN"):
            assert "apt-get install" not in run.args, run.line


def test_runner_image_installs_the_runner_extra_and_no_kopf() -> None:
    assert installed_extras("Dockerfile.runner") == {"runner"}
    closure = distribution_closure("runner")
    assert "torch" in closure and "diffrp-nvdiffrast" in closure
    assert "kopf" not in closure


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_runs_as_a_numeric_non_root_user(name: str) -> None:
    users = final_stage(name).all("USER")
    assert users, f"{name} sets no USER"
    uid, _, gid = users[-1].args.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can be verified"
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_runner_user_is_the_one_the_operator_runs_it_as() -> None:
    uid = final_stage("Dockerfile.runner").all("USER")[-1].args.partition(":")[0]
    assert int(uid) == RUNNER_UID


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned(name: str) -> None:
    global_args, stages = parse(ROOT / name)
    for stage in stages:
        if stage.base in {s.name for s in stages if s.name}:
            continue
        image = expand(stage.base, global_args)
        _, _, tag = image.partition(":")
        if "@sha256:" in image:
            continue
        assert tag and tag != "latest", image
        # An exact version (major.minor.patch), not a moving tag like `3.11-slim`.
        assert re.match(r"^\d+\.\d+\.\d+", tag), image


def test_operator_base_is_a_slim_python() -> None:
    global_args, stages = parse(ROOT / "Dockerfile.operator")
    for stage in stages:
        assert re.match(r"^python:3\.1[1-9]\.\d+-slim", expand(stage.base, global_args))


def test_runner_builds_on_cuda_devel_and_runs_on_cuda_base() -> None:
    global_args, stages = parse(ROOT / "Dockerfile.runner")
    bases = [expand(s.base, global_args) for s in stages]
    assert bases[0].startswith("nvidia/cuda:") and "-devel-" in bases[0]
    assert bases[-1].startswith("nvidia/cuda:") and "-devel-" not in bases[-1]
    # Same CUDA release and OS in both, so the compiled plugin and the venv's Python fit.
    assert bases[0].replace("-devel-", "-") == bases[-1].replace("-base-", "-")


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.args):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def test_runner_precompiles_nvdiffrast_for_the_data_centre_gpus() -> None:
    import nvdiffrast.torch.ops as ops

    _, stages = parse(ROOT / "Dockerfile.runner")
    build, final = stages[0], stages[-1]
    build_env = env_of(build)
    assert build_env["TORCH_CUDA_ARCH_LIST"].split() == ["8.0", "8.6", "8.9", "9.0"]
    # The runtime looks for the plugin where the build put it.
    extensions = build_env["TORCH_EXTENSIONS_DIR"]
    assert env_of(final)["TORCH_EXTENSIONS_DIR"] == extensions
    copied = [c.args for c in final.all("COPY") if "--from=build" in c.args]
    assert any(extensions in args for args in copied)
    # The build calls nvdiffrast's own loader, which compiles through cpp_extension.
    calls = [r.args for r in build.all("RUN") if "_get_plugin" in r.args]
    assert calls and "gl=False" in calls[0]
    assert "gl" in inspect.signature(ops._get_plugin).parameters
    # ...and the final image, with no compiler, loads it once more to prove it fits.
    assert [r for r in final.all("RUN") if "_get_plugin" in r.args]


def test_the_local_build_arguments_exist_with_production_defaults() -> None:
    """`recon dev images` sets these arguments; each must exist, and its default must be
    the production build's, so a plain `docker build` is unchanged."""
    from recon_stack.image_build import IMAGES

    for spec in IMAGES:
        global_args, stages = parse(ROOT / spec.dockerfile)
        declared = dict(global_args)
        for stage in stages:
            for arg in stage.all("ARG"):
                key, _, value = arg.args.partition("=")
                declared.setdefault(key.strip(), value.strip())
        assert set(spec.local_args) <= set(declared), spec.dockerfile
    runner_args = parse(ROOT / "Dockerfile.runner")[0]
    assert expand(runner_args["BUILD_BASE"], runner_args).startswith("nvidia/cuda:")
    assert parse(ROOT / "Dockerfile.operator")[0]["BASE"].startswith("python:3.11")
