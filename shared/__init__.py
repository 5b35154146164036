"""Stratus shared package: domain, services, ports and adapters used by every function."""
