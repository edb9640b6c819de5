"""Adapters that wrap outside libraries as movierec Recommenders (imported lazily)."""
