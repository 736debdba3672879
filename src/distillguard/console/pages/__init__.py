"""The console's pages: each module turns one area's read model into a response (a template, JSON, a redirect)."""
