"""Threat intelligence shared between providers: STIX 2.1 bundles, a TAXII 2.1 hub, keyed privacy, trust."""
