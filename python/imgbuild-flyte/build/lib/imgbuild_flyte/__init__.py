"""Flyte image builder plugin for imgbuild (entry point ``imgbuild``)."""

from imgbuild_flyte.builder import ImgbuildChecker, ImgbuildImageBuilder

__all__ = ["ImgbuildChecker", "ImgbuildImageBuilder"]
