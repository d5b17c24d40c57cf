"""Tests of metakit.metadata (one module per package module)."""
