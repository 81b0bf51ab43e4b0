"""Data stage: sources -> manifest -> cleaning -> labels -> datasets (model-agnostic)."""
