"""One Lambda layer version per layer asset some function is deployed with, built by
``layers/build.py`` into ``.build/``: the catalog layers functions use, and the bundles of
functions that list more catalog layers than Lambda attaches (five per function, less those
attached by ARN: the Parameters and Secrets extension, and the Lambda Web Adapter of function
URL functions; ``layers.build.function_layers``).

They live in the root stack and are handed to every domain's nested stack: a layer is one
resource however many functions use it. A layer the catalog declares but no function uses
gets no resource and need not be built (``layers.build.used_layers``).
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.catalog import LAYERS, Function
from infra.topology import construct_id
from layers.build import asset_is_current, bundle_parts, deployed_assets, function_layers, is_bundle, layer_dir

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64


def _description(name: str) -> str:
    """``Stratus <asset>: <pins>``: a deployed layer says what it holds (256 chars max)."""
    requirements = [req for part in bundle_parts(name) for req in LAYERS[part].requirements]
    return (f"Stratus {name}: " + " ".join(requirements))[:256]


class DependencyLayers(Construct):
    def __init__(self, scope: Construct, construct_id_: str) -> None:
        super().__init__(scope, construct_id_)
        self.by_name: dict[str, lambda_.ILayerVersion] = {}
        for name in deployed_assets():
            if not asset_is_current(name):
                raise RuntimeError(f"layer {name!r} is missing or stale in {layer_dir(name)}: "
                                   "run `make layers` (python -m layers.build) first")
            self.by_name[name] = lambda_.LayerVersion(
                self, ("Bundle" + construct_id(name)) if is_bundle(name) else name.capitalize(),
                code=lambda_.Code.from_asset(str(layer_dir(name))),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=_description(name),
            )

    def for_function(self, fn: Function) -> list[lambda_.ILayerVersion]:
        """The catalog layers of ``fn`` as deployed (bundled past the slots its attached layers leave)."""
        unknown = [name for name in fn.layers if name not in LAYERS]
        if unknown:
            raise KeyError(f"{fn.name}: unknown layers {unknown}; the catalog declares {sorted(LAYERS)}")
        return [self.by_name[name] for name in function_layers(fn)]
