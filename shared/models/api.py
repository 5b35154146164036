"""Models API shapes. Credentials are write-only: no response carries them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, SecretStr, Strict

from shared.models.spec import NAME_PATTERN, BatchSize, Capability, Dimensions, ModelLimits, Pricing, TokenCount
from shared.validation import INT4_MAX, INT8_MAX, HttpUrlStr, RequestModel

_Request = RequestModel

# Where a model comes from: the platform's catalog, or the tenant's own.
ModelSource = Literal["catalog", "tenant"]
# How a usage report groups its figures.
UsageGrouping = Literal["model", "day"]


class ModelOut(BaseModel):
    id: uuid.UUID
    name: str
    display_name: str
    source: ModelSource
    protocol: str
    provider_model: str
    capabilities: list[str]
    max_context_tokens: int
    max_output_tokens: int
    max_batch_size: int
    max_input_tokens: int
    dimensions: int | None
    default_parameters: dict[str, Any]
    pricing: Pricing
    base_url: str | None
    # Whether a call can be made: the key reference resolves, or the tenant stored a key.
    configured: bool
    created_at: datetime
    updated_at: datetime
    version: int


TenantProtocol = Literal["openai", "anthropic", "bedrock"]
# Strict models take an enum member only from its JSON string.
CapabilityName = Annotated[Capability, Strict(False)]


class CreateModel(_Request, ModelLimits):
    name: str = Field(pattern=NAME_PATTERN)
    display_name: str = Field(default="", max_length=200)
    protocol: TenantProtocol
    provider_model: str = Field(min_length=1, max_length=200)
    base_url: HttpUrlStr | None = None
    api_key: SecretStr | None = Field(default=None, description="Write-only; stored encrypted, never returned")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    capabilities: list[CapabilityName] = Field(default_factory=lambda: [Capability.CHAT], min_length=1)
    # Check the credentials with a minimal call before saving.
    test: bool = True


class UpdateModel(_Request):
    display_name: str | None = Field(default=None, max_length=200)
    provider_model: str | None = Field(default=None, min_length=1, max_length=200)
    base_url: HttpUrlStr | None = None
    api_key: SecretStr | None = None
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    capabilities: list[CapabilityName] | None = Field(default=None, min_length=1)
    max_context_tokens: TokenCount | None = None
    max_output_tokens: TokenCount | None = None
    max_batch_size: BatchSize | None = None
    max_input_tokens: TokenCount | None = None
    dimensions: Dimensions | None = None
    default_parameters: dict[str, Any] | None = None
    pricing: Pricing | None = None
    test: bool = True
    version: int | None = Field(default=None, ge=1, le=INT4_MAX)


class RefreshResult(BaseModel):
    model_count: int
    new_models: list[str]
    updated_models: list[str]
    removed_models: list[str]
    refreshed_at: datetime


class ModelDefaults(BaseModel):
    chat_model: str | None
    chat_fallback_model: str | None
    embedding_model: str | None
    rerank_model: str | None
    # What applies when the tenant chose nothing (the deployment's defaults).
    effective: dict[str, str | None]
    version: int


class UpdateDefaults(_Request):
    chat_model: str | None = Field(default=None, pattern=NAME_PATTERN)
    chat_fallback_model: str | None = Field(default=None, pattern=NAME_PATTERN)
    embedding_model: str | None = Field(default=None, pattern=NAME_PATTERN)
    rerank_model: str | None = Field(default=None, pattern=NAME_PATTERN)
    # 0 is what GET answers while the tenant has set no defaults: it guards the first write.
    version: int | None = Field(default=None, ge=0, le=INT4_MAX, description=(
        "The version last read (GET's `version`; 0 when no defaults were set yet): the write is refused "
        "with 409 if the defaults changed since. Omit to overwrite unconditionally."))


class ModelTestResult(BaseModel):
    model: str
    ok: bool
    latency_ms: int
    error: dict[str, Any] | None = None


# Money is a JSON number in the deployment's currency (the catalog's prices), at most 10
# decimal places as stored (numeric(20, 10)); pydantic would write a Decimal as a string, and
# str(Decimal) may use exponent notation ("0E-10").
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json"), Field(description=(
    "An amount of money in the price catalog's currency, as a JSON number (at most 10 decimal places)."))]


class UsageGroup(BaseModel):
    key: str
    calls: int
    failed_calls: int
    input_tokens: int
    output_tokens: int
    includes_estimates: bool
    cost: Money
    avg_latency_ms: int


class QuotaStatus(BaseModel):
    monthly_tokens_soft: int | None
    monthly_tokens_hard: int | None
    used_this_month: int


class UsageReport(BaseModel):
    period_start: datetime
    period_end: datetime
    group_by: UsageGrouping
    groups: list[UsageGroup]
    total_input_tokens: int
    total_output_tokens: int
    total_cost: Money
    quota: QuotaStatus


class UpdateQuota(_Request):
    monthly_tokens_soft: int | None = Field(default=None, ge=1, le=INT8_MAX)
    monthly_tokens_hard: int | None = Field(default=None, ge=1, le=INT8_MAX)


class Quota(BaseModel):
    tenant_id: uuid.UUID
    monthly_tokens_soft: int | None
    monthly_tokens_hard: int | None
    updated_at: datetime
