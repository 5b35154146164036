"""The vector-store port (semantic + full-text search over segments) and its adapters:
PostgreSQL (pgvector + tsvector) and OpenSearch (k-NN + BM25)."""
