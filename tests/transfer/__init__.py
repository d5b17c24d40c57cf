"""Tests of metakit.transfer (one module per package module)."""
