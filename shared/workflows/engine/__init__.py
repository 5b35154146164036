"""The workflow engine: graph semantics (which nodes are ready, which are skipped), the node
runner (a node's retry, timeout and error strategy) and one executor per node type. The
interpreter's step loop drives it; nothing here knows about Step Functions or persistence.

- :mod:`.graph`: ``plan()`` over the nodes' outcomes, as Dify's graph engine reads edges (an
  edge is taken when its source succeeded and left by its handle, dead when the source was
  skipped or left by another; a node runs when all its incoming edges are settled and one is
  taken, and is skipped when all are dead).
- :mod:`.runner`: ``NodeRunner.run`` one node against the run's variable pool; ``run_outputs``.
- :mod:`.nodes`: the executors, each resolving its inputs then running.
"""
