"""Tests of metakit.metric (one module per package module)."""
