"""Access shared by several domains' entries."""

from __future__ import annotations

from shared.catalog import DATABASE, OPENSEARCH, REDIS, Access, secret

# Functions that call providers need the SDK layer and boto3 (Bedrock, KMS for tenant
# credentials). The local embedding model (180 MB) goes only to functions that embed: with
# the SDKs it would pass Lambda's 250 MB.
PROVIDER_LAYERS = ("base", "aws", "llm")
KMS = Access("kms:credentials", ("encrypt", "decrypt"))
BEDROCK = Access("bedrock", ("invoke",))
# The platform's provider keys (JSON secret: {"OPENAI_API_KEY": ..., ...}).
PROVIDER_KEYS = secret("provider-keys")
PROVIDER_ACCESS = (DATABASE, REDIS, KMS, BEDROCK, PROVIDER_KEYS)
# Functions that embed (indexing, manual segments, retrieval queries) or only count tokens.
EMBED_LAYERS = ("base", "aws", "search", "embed", "llm")
EMBED_ACCESS = (DATABASE, REDIS, OPENSEARCH, KMS, BEDROCK, PROVIDER_KEYS)
