"""Knowledge bases: documents parsed, chunked, embedded and indexed; retrieval over them."""
