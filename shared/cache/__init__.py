"""Cache, limits and event streams: ports with a Redis (cluster-mode) adapter and an
in-process adapter for the local runtime. Both pass the same contract tests."""
