"""One Lambda layer version per catalog layer that some function uses, built by
``layers/build.py`` into ``.build/``.

They live in the root stack and are handed to every domain's nested stack: a layer is one
resource however many functions use it. A layer the catalog declares but no function uses
(e.g. ``embed``, ~180 MB) gets no resource and need not be built (``layers.build.used_layers``).
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.catalog import LAYERS
from layers.build import is_current, layer_dir, used_layers

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64


class DependencyLayers(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, lambda_.ILayerVersion] = {}
        for name in used_layers():
            layer = LAYERS[name]
            if not is_current(layer):
                raise RuntimeError(f"layer {name!r} is missing or stale in {layer_dir(name)}: "
                                   "run `make layers` (python -m layers.build) first")
            # Description carries the pins so a deployed layer says what it holds (256 chars max).
            description = f"Stratus {name}: " + " ".join(layer.requirements)
            self.by_name[name] = lambda_.LayerVersion(
                self, name.capitalize(),
                code=lambda_.Code.from_asset(str(layer_dir(name))),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=description[:256],
            )

    def for_function(self, names: tuple[str, ...]) -> list[lambda_.ILayerVersion]:
        unknown = [name for name in names if name not in self.by_name]
        if unknown:
            raise KeyError(f"unknown layers {unknown}; the catalog declares {sorted(LAYERS)}")
        return [self.by_name[name] for name in names]
