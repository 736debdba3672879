"""What a console page answers when it cannot show what was asked: a status, a title and what to do."""

from __future__ import annotations


class ConsoleError(Exception):
    """A request the console refuses (bad filter, unknown account, stale form): shown as an error page, or as JSON
    on the API routes, with ``status``."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


def not_found(what: str, ident: str) -> ConsoleError:
    return ConsoleError(404, f"No such {what}", f"There is no {what} {ident!r} in this deployment's store.")
