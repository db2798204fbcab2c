"""Flyte image builder and existence checker backed by the imgbuild binary.

The builder lowers a Flyte ``Image`` to Flyte's own image spec (the
``flyteidl2.imagebuilder.ImageSpec`` its remote builder sends) plus the
build folder the SDK prepares, and runs ``imgbuild build --flyte-spec``;
``from_dockerfile`` images go through imgbuild's Dockerfile frontend. The
checker runs ``imgbuild exists`` and answers present, absent, or raises
(unknown), never "present" on an error.

Configuration (environment):
  IMGBUILD_BIN            the imgbuild binary (default: ``imgbuild`` on PATH)
  IMGBUILD_REGISTRY_ARGS  registry flags for build and exists, e.g.
                          ``--insecure-registry host:5000 --ca-cert ca.pem``
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import typing
from pathlib import Path

from flyte._build import ImageBuild
from flyte._image import Image, _get_push_registry
from flyte._internal.imagebuild.image_builder import ImageChecker, PersistentCacheImageChecker
from flyte.errors import ImageBuildError

# `imgbuild exists`: 0 present, 1 absent; anything else is unknown.
_EXISTS_PRESENT = 0
_EXISTS_ABSENT = 1


def _binary() -> str:
    configured = os.environ.get("IMGBUILD_BIN")
    if configured:
        return configured
    found = shutil.which("imgbuild")
    if not found:
        raise ImageBuildError("imgbuild was not found on PATH; install it or set IMGBUILD_BIN")
    return found


def _registry_args() -> typing.List[str]:
    return shlex.split(os.environ.get("IMGBUILD_REGISTRY_ARGS", ""))


def _has_registry(repository: str) -> bool:
    """Docker's rule: the first component names a registry when it has a dot
    or a port, or is localhost."""
    first, _, rest = repository.partition("/")
    return bool(rest) and ("." in first or ":" in first or first == "localhost")


def _error_message(stdout: str, stderr: str) -> str:
    """imgbuild's own message: the JSON error on stdout, else stderr."""
    for line in stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            return str(doc["error"].get("message", ""))
    return stderr.strip() or stdout.strip()


class ImgbuildChecker(ImageChecker):
    """Asks the registry through ``imgbuild exists`` whether every platform is there."""

    @classmethod
    async def image_exists(
        cls, repository: str, tag: str, arch: typing.Tuple[str, ...] = ("linux/amd64",)
    ) -> typing.Optional[str]:
        if not _has_registry(repository):
            registry = _get_push_registry()
            if registry:
                repository = f"{registry}/{repository}"
        ref = f"{repository}:{tag}"
        cmd = [_binary(), "exists", ref, "--format", "json", *_registry_args()]
        for p in arch:
            cmd += ["--platform", p]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode == _EXISTS_PRESENT:
            return ref
        if proc.returncode == _EXISTS_ABSENT:
            return None
        # Unknown (auth, network, a bad reference): the engine tries the next
        # checker rather than taking it for present or absent.
        raise RuntimeError(f"imgbuild exists {ref}: {_error_message(proc.stdout, proc.stderr)}")


def _secret_args(image: Image) -> typing.List[str]:
    """``--secret`` for each build secret, read as Flyte's local builder reads
    it: the host variable GROUP_KEY, else the file /etc/secrets/group_key.
    The id matches what ``--flyte-spec`` derives from the spec's secret."""
    from flyte import Secret

    args: typing.List[str] = []
    seen: typing.Set[str] = set()
    for layer in image._layers:
        for mount in getattr(layer, "secret_mounts", None) or ():
            secret = Secret(key=mount) if isinstance(mount, str) else mount
            env_key = "_".join(k.upper() for k in filter(None, (secret.group, secret.key)))
            secret_id = re.sub(r"[^A-Za-z0-9_]", "_", env_key)
            if secret_id in seen:
                continue
            seen.add(secret_id)
            if os.getenv(env_key):
                args += ["--secret", f"id={secret_id},env={env_key}"]
                continue
            path = "/etc/secrets/" + "_".join(filter(None, (secret.group, secret.key)))
            if not os.path.exists(path):
                raise ImageBuildError(f"secret {secret.key}: set {env_key} or write {path}")
            args += ["--secret", f"id={secret_id},src={path}"]
    return args


class ImgbuildImageBuilder:
    """Flyte ``ImageBuilder`` that runs imgbuild as a subprocess."""

    def get_checkers(self) -> typing.Optional[typing.List[typing.Type[ImageChecker]]]:
        # Never None: the engine would take every image as present.
        return [PersistentCacheImageChecker, ImgbuildChecker]

    async def build_image(
        self, image: Image, dry_run: bool = False, wait: bool = True, force: bool = False
    ) -> ImageBuild:
        # Plugins do not get the push registry from the engine.
        if image._is_cloned and not image.registry:
            registry = _get_push_registry()
            if not registry:
                raise ImageBuildError(
                    f"Cannot build image '{image.name or image.uri}': no container registry is configured "
                    "to push to; set `registry` under `image:` in config.yaml or FLYTE_IMAGE_REGISTRY"
                )
            image = image.clone(registry=registry)
        uri = image.uri
        platforms = ",".join(image.platform)
        with tempfile.TemporaryDirectory(prefix="imgbuild-flyte-") as tmp:
            if image.dockerfile is not None:
                dockerfile = Path(image.dockerfile).absolute()
                cmd = [_binary(), "plan" if dry_run else "build", "-f", str(dockerfile), str(dockerfile.parent)]
            else:
                from google.protobuf import json_format

                from flyte._internal.imagebuild.remote_builder import _get_layers_proto

                context = Path(tmp) / "context"
                context.mkdir()
                spec = _get_layers_proto(image, context)
                # Flyte leaves the spec's platforms to the remote backend.
                del spec.platform[:]
                spec.platform.extend(image.platform)
                spec_path = Path(tmp) / "spec.json"
                spec_path.write_text(json_format.MessageToJson(spec))
                cmd = [
                    _binary(),
                    "plan" if dry_run else "build",
                    "--flyte-spec",
                    str(spec_path),
                    "--context",
                    str(context),
                ]
            cmd += ["--platform", platforms, "--format", "json", *_registry_args()]
            if not dry_run:
                cmd += ["--push", "--tag", uri, "-q", *_secret_args(image)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ImageBuildError(
                f"imgbuild failed to build {uri} (exit {proc.returncode}): "
                f"{_error_message(proc.stdout, proc.stderr)}"
            )
        return ImageBuild(uri=uri, remote_run=None)
