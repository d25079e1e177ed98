"""Results: what operators return, concurrent downloads, atomic landing, RAG documents."""
