"""Tests of metakit.continual (one module per package module)."""
