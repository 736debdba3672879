"""Watermarks on what we serve, their detectors, and provenance tests of suspect models."""
