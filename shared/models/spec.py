"""Model specifications: what the catalog YAML files declare and tenants add."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Names that would shadow the fixed routes under /api/v1/models/.
RESERVED_NAMES = frozenset({"defaults", "refresh"})
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"


class Protocol(StrEnum):
    OPENAI = "openai"          # api.openai.com and any OpenAI-compatible base URL
    ANTHROPIC = "anthropic"
    BEDROCK = "bedrock"
    LOCAL = "local"            # the bundled offline embedding model


class Capability(StrEnum):
    CHAT = "chat"
    EMBEDDING = "embedding"
    RERANK = "rerank"
    FUNCTION_CALLING = "function_calling"
    VISION = "vision"
    STRUCTURED_OUTPUT = "structured_output"


_CHAT = {Capability.CHAT, Capability.FUNCTION_CALLING, Capability.VISION, Capability.STRUCTURED_OUTPUT}
# What each adapter implements (no adapter offers rerank yet).
PROTOCOL_CAPABILITIES: dict[Protocol, frozenset[Capability]] = {
    Protocol.OPENAI: frozenset(_CHAT | {Capability.EMBEDDING}),
    Protocol.ANTHROPIC: frozenset(_CHAT),
    Protocol.BEDROCK: frozenset(_CHAT | {Capability.EMBEDDING}),
    Protocol.LOCAL: frozenset({Capability.EMBEDDING}),
}


class Connection(BaseModel):
    """How to reach the provider. Secrets are references, never values:
    ``env:NAME`` (an environment variable of the deployment) or ``secret:<id>`` (Secrets
    Manager). Tenant models hold their key encrypted instead (never returned)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    api_key_ref: str | None = Field(default=None, max_length=600,
                                    pattern=r"^(env:[A-Z][A-Z0-9_]*|secret:[A-Za-z0-9:/+=.@_-]+)$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")


class Pricing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_per_1k: Decimal = Field(default=Decimal(0), ge=0)
    output_per_1k: Decimal = Field(default=Decimal(0), ge=0)


# The bounds of a model's limits, defined once for catalog specs and tenant models' bodies.
TokenCount = Annotated[int, Field(ge=1, le=2**31 - 1)]
BatchSize = Annotated[int, Field(ge=1, le=4096)]
Dimensions = Annotated[int, Field(ge=1, le=16_000)]


class ModelLimits(BaseModel):
    """What a model accepts, answers and costs. Catalog specs and a tenant model's create body
    inherit these fields (flat, so the wire shape stays the same); updates take them optional."""

    max_context_tokens: TokenCount = 8192
    max_output_tokens: TokenCount = 4096
    # Embeddings: provider limits a batch must respect.
    max_batch_size: BatchSize = 64
    max_input_tokens: TokenCount = 8191
    dimensions: Dimensions | None = None
    default_parameters: dict[str, Any] = Field(default_factory=dict)
    pricing: Pricing = Field(default_factory=Pricing)


class ModelSpec(ModelLimits):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Stratus id of the model, e.g. gpt-4o-mini")
    display_name: str = Field(min_length=1, max_length=200)
    protocol: Protocol
    # The provider's own model name (e.g. "gpt-4o-mini", "anthropic.claude-3-5-haiku-20241022-v1:0").
    provider_model: str = Field(min_length=1, max_length=200)
    connection: Connection = Field(default_factory=Connection)
    capabilities: list[Capability] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"{name!r} is reserved")
        return name

    @field_validator("capabilities")
    @classmethod
    def _unique(cls, capabilities: list[Capability]) -> list[Capability]:
        return sorted(set(capabilities))

    @model_validator(mode="after")
    def _supported_by_protocol(self) -> ModelSpec:
        unsupported = sorted(set(self.capabilities) - PROTOCOL_CAPABILITIES[self.protocol])
        if unsupported:
            raise ValueError(f"the {self.protocol.value} adapter does not offer: {', '.join(unsupported)}")
        return self

    @model_validator(mode="after")
    def _embedding_dimensions(self) -> ModelSpec:
        if Capability.EMBEDDING in self.capabilities and self.dimensions is None:
            raise ValueError("embedding models declare their dimensions")
        return self

    def has(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (self.pricing.input_per_1k * input_tokens + self.pricing.output_per_1k * output_tokens) / 1000


class CatalogFile(BaseModel):
    """One versioned YAML file under shared/models/catalog/."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    models: list[ModelSpec]
