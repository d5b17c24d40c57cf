"""Tests of metakit.gan (one module per package module)."""
