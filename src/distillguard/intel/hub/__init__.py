"""The TAXII 2.1 hub through which providers share STIX 2.1 indicators of distillation campaigns.

``distillguard hub serve`` runs it; ``distillguard hub member|collection|grant|revoke`` administer it (cli.py).
The store (store.py) holds members, collections, rights, objects and status resources; app.py serves them.
"""
