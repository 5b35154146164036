"""Knowledge bases: CRUD, documents, segments, retrieval, ingestion."""
