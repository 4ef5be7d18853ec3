"""Option types shared by the commands: numbers that must be finite (nan and inf are refused where they enter)."""

from __future__ import annotations

import math

import click


class Finite(click.FloatRange):
    """A float option that refuses nan and ±inf, and (like click.FloatRange) values outside [min, max]."""

    name = "float"

    def convert(self, value, param, ctx):  # noqa: D401 - click hook
        rv = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(rv, param, ctx)

    def get_metavar(self, param, ctx=None) -> str:  # noqa: D401 - click hook
        return "FLOAT"

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()


FINITE = Finite()  # any finite float

# --device of every command that computes (baggan.device.resolve_device reads it)
device_option = click.option("--device", metavar="DEVICE", default="auto", show_default=True,
                             help="auto (CUDA if available, else CPU), cpu, cuda (cuda:LOCAL_RANK under torchrun), "
                                  "cuda:N.")
