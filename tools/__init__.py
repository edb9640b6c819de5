"""Scripts that keep the repository's generated text true (run from the repository's root)."""
