"""Evidence packs: everything about a case, in one folder a reviewer, a partner or a court can read offline and check
for tampering (docs/cases.md)."""
