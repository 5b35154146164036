"""Powertools logger, tracer and metrics shared by every function (one instance per container)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "stratus"

logger = Logger(service=SERVICE)
# The X-Ray SDK is imported by Powertools only when tracing is enabled (in AWS).
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="Stratus", service=SERVICE)
