"""Flyte tasks that build images with imgbuild inside the cluster.

A Flyte deployment runs these in imgbuild's own image (built from
``deploy/imgbuild.toml`` in the imgbuild repository, pushed to a registry the
cluster pulls from): no Docker daemon, no privileges for file and Python
layers, and with a registry step cache every run of the task starts warm even
on a fresh pod.

``build_definition``
    builds an imgbuild definition (a folder holding ``imgbuild.toml``) and
    pushes it.
``build_flyte_spec``
    builds a Flyte image spec (the ``ImageSpec`` JSON Flyte's own remote
    builder sends, with its build folder) and pushes it: the same inputs and
    output as Flyte's ``build-image`` system task.

Both return the pushed image as ``NAME@DIGEST`` and raise ``ImageBuildError``
with imgbuild's own message when the build fails.

Configuration (environment, read when this module is imported):
  IMGBUILD_IMAGE          the image the tasks run in (default ``imgbuild:latest``)
  IMGBUILD_BIN            the imgbuild binary (default: ``imgbuild`` on PATH)
  IMGBUILD_REGISTRY_ARGS  extra registry flags, e.g. ``--insecure-registry host:5000``
  IMGBUILD_CACHE          a cache repository used when a call gives none
                          (``--cache-from`` and ``--cache-to``)
"""

from __future__ import annotations

import json
import os
import subprocess
import typing
from pathlib import Path

import flyte
from flyte.errors import ImageBuildError
from flyte.io import Dir, File

from imgbuild_flyte.builder import _binary, _error_message, _registry_args

env = flyte.TaskEnvironment(
    name="imgbuild",
    image=flyte.Image.from_base(os.environ.get("IMGBUILD_IMAGE", "imgbuild:latest")),
    resources=flyte.Resources(cpu=2, memory="2Gi"),
)


def _cache_args(cache: str) -> typing.List[str]:
    cache = cache or os.environ.get("IMGBUILD_CACHE", "")
    return ["--cache-from", cache, "--cache-to", cache] if cache else []


def _push(cmd: typing.List[str], target: str) -> str:
    """Runs an imgbuild build that pushes ``target``; its ``NAME@DIGEST``."""
    cmd = cmd + ["--push", "--tag", target, "--format", "json", "-q", *_registry_args()]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageBuildError(
            f"imgbuild failed to build {target} (exit {proc.returncode}): "
            f"{_error_message(proc.stdout, proc.stderr)}"
        )
    report = json.loads(proc.stdout)
    pushed = report["images"][0]["pushed"][0]
    name = target.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return f"{name}@{pushed['digest']}"


@env.task
async def build_definition(
    context: Dir, target: str, image: str = "", definition: str = "imgbuild.toml", cache: str = ""
) -> str:
    """Builds image ``image`` (the only one when empty) of the definition
    ``definition`` in ``context`` and pushes it as ``target``."""
    folder = Path(await context.download())
    cmd = [_binary(), "build", str(folder / definition)]
    if image:
        cmd += ["--image", image]
    return _push(cmd + _cache_args(cache), target)


@env.task
async def build_flyte_spec(
    spec: File, target_image: str, context: typing.Optional[Dir] = None, cache: str = ""
) -> str:
    """Builds a Flyte image spec (JSON) with its build folder and pushes it
    as ``target_image``."""
    spec_path = await spec.download()
    cmd = [_binary(), "build", "--flyte-spec", spec_path]
    if context is not None:
        cmd += ["--context", await context.download()]
    return _push(cmd + _cache_args(cache), target_image)
