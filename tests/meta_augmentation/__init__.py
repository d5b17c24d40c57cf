"""Tests of metakit.meta_augmentation (one module per package module)."""
