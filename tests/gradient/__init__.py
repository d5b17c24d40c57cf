"""Tests of metakit.gradient (one module per package module)."""
