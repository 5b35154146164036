"""``python -m infra.local``: run the whole platform locally (``make dev``)."""

from infra.local.runtime import main

main()
