"""`make demo`: one reconstruction through the whole system on the local stack.

Starts the stack (or finds it running), installs the chart with `helm upgrade --install`,
uploads a synthetic capture of a known object, applies examples/reconjob.yaml, shows
`kubectl get reconjobs` as the job moves, downloads the mesh and preview and says how close
the mesh is to the true object. The stack keeps running afterwards.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from recon_stack.paths import default_state_dir
from recon_stack.stack import Stack, StackError

from recon_cli.cluster_demo import capture, chart, outputs, reconjob, watch
from recon_cli.cluster_demo.tools import LocalTools, ToolError, Tools

RELEASE = "recon-operator"
RELEASE_NAMESPACE = "recon-system"
# The quality the demo asks for instead of the example's `standard`: seconds on a CPU.
DEMO_RECONSTRUCTION = {"preset": "draft"}


def say(message: str) -> None:
    print(message, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", type=Path, default=default_state_dir(), help="stack state")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="where outputs go")
    p.add_argument("--object", default="checker_sphere", help="synthetic object to capture")
    p.add_argument("--size", type=int, default=128, help="capture image size in pixels")
    p.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the job")
    return p.parse_args(argv)


def release_for(tools: Tools, endpoint: str) -> chart.Release:
    """The demo's release; an installed one keeps its ports, so a rerun does not roll it."""
    release = chart.Release(RELEASE, RELEASE_NAMESPACE, storage_endpoint=endpoint)
    installed = chart.installed_values(tools, RELEASE, RELEASE_NAMESPACE) or {}
    metrics = (installed.get("metrics") or {}).get("port")
    health = (installed.get("health") or {}).get("port")
    if metrics and health:
        release = chart.Release(
            RELEASE,
            RELEASE_NAMESPACE,
            storage_endpoint=endpoint,
            metrics_port=int(metrics),
            health_port=int(health),
        )
    return release


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    say("==> the local stack (recon dev up)")
    stack = Stack(args.state_dir)
    stack.up()
    tools = LocalTools(stack.kubeconfig, stack.layout.bin)
    creds = stack.minio_credentials
    client = stack_minio(stack)

    say("==> the recon-operator chart (helm upgrade --install)")
    release = release_for(tools, stack.minio_endpoint)
    chart.upgrade_install(tools, release)
    pod = chart.wait_operator_ready(tools, release)
    say(f"    operator {pod['metadata']['name']} running on node {pod['spec']['nodeName']}")

    job = reconjob.customised(reconjob.example(), reconstruction=DEMO_RECONSTRUCTION)
    ns, name, spec = job["metadata"]["namespace"], job["metadata"]["name"], job["spec"]
    bucket, prefix = spec["input"]["bucket"], spec["input"]["prefix"]
    say(f"==> a synthetic capture of `{args.object}` ({args.size}x{args.size}, 6 views)")
    truth = capture.upload_synthetic_capture(client, bucket, prefix, args.object, size=args.size)
    capture.ensure_bucket(client, spec["output"]["bucket"])
    say(f"    uploaded to s3://{bucket}/{prefix}")

    say(f"==> the ReconJob (examples/reconjob.yaml, preset draft) in namespace {ns}")
    tools.kubectl("apply", "-f", str(reconjob.REPO / "examples" / "namespace.yaml"))
    capture.apply_credentials_secret(tools, ns, creds.access_key, creds.secret_key)
    # The spec is immutable: a rerun replaces the previous demo job (its outputs stay).
    tools.kubectl("delete", "reconjob", name, "-n", ns, "--ignore-not-found", "--wait=true")
    say("    " + reconjob.apply(tools, job))
    say(f"    $ kubectl -n {ns} get reconjobs -w")
    seen = follow_shown(tools, ns, name, args.timeout)
    if seen[-1].phase != "Succeeded":
        say(tools.kubectl("describe", "reconjob", name, "-n", ns).stdout)
        say(f"error: the job ended {seen[-1].phase}")
        return 1
    tools.kubectl("wait", "--for=condition=Succeeded", f"reconjob/{name}", "-n", ns)

    status = reconjob.get(tools, ns, name)["status"]
    files = outputs.download_outputs(client, status["outputs"], args.out)
    mesh = outputs.load_glb(files["mesh"])
    if mesh is None:
        say(f"error: {files['mesh']} holds no triangles")
        return 1
    score = outputs.accuracy(truth, mesh)
    report(args, files, score, len(mesh.faces), time.monotonic() - started)
    say_next_steps(args.state_dir, ns, name)
    return 0


def follow_shown(
    tools: LocalTools, namespace: str, name: str, timeout: float
) -> list[watch.Snapshot]:
    """Wait for the job to finish while `kubectl get reconjobs -w` shows it moving."""
    shown = subprocess.Popen(
        [str(tools.kubectl_path), "get", "reconjobs", "-n", namespace, "-w"],
        env=tools.env(),
    )
    try:
        return watch.follow(tools, namespace, name, timeout)
    finally:
        time.sleep(1)  # the last row
        shown.terminate()
        shown.wait(timeout=10)


def stack_minio(stack: Stack) -> object:
    from minio import Minio

    creds = stack.minio_credentials
    return Minio(
        stack.minio_endpoint,
        access_key=creds.access_key,
        secret_key=creds.secret_key,
        secure=False,
    )


def report(
    args: argparse.Namespace,
    files: dict[str, Path],
    score: outputs.Accuracy,
    faces: int,
    seconds: float,
) -> None:
    say(f"==> done in {seconds:.0f} s")
    say(f"    mesh:    {files['mesh'].resolve()}  ({faces} triangles; open in any glTF viewer)")
    say(f"    preview: {files['preview'].resolve()}  (input views beside re-rendered ones)")
    say(f"    metrics: {files['metrics'].resolve()}")
    say(f"    accuracy against the true `{args.object}`:")
    say(
        f"      Chamfer-L1 {score.chamfer_l1 * 1000:.2f} mm "
        f"({score.chamfer_l1_ratio * 100:.2f}% of the object's {score.diagonal:.2f} m diagonal)"
    )
    say(f"      F-score at {score.threshold * 1000:.1f} mm: {score.fscore:.3f}")
    if score.colour_psnr is not None:
        say(f"      colour PSNR: {score.colour_psnr:.1f} dB")


def say_next_steps(state_dir: Path, namespace: str, name: str) -> None:
    where = "" if state_dir == default_state_dir() else f" --state-dir {state_dir}"
    say("")
    say("The stack keeps running. To use it from this shell:")
    say(f'    eval "$(.venv/bin/recon dev env{where})"')
    say(f"    kubectl -n {namespace} get reconjobs")
    say(f"    kubectl -n {namespace} describe reconjob {name}")
    say(f"Stop it with `.venv/bin/recon dev down{where}` (add --purge to delete its data).")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except (StackError, ToolError, TimeoutError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
