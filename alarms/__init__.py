"""The vectorised alarm engine: one module per rule family, episodes, storage, evaluation."""
