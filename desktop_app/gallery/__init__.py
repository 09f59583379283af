"""Gallery: who is enrolled (SQLAlchemy store, the truth) and a FAISS index rebuilt from it."""
