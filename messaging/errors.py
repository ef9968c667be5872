"""Errors a person can cause, each with the HTTP status that says whose fault it is.

Services raise these before writing anything (the transaction rolls back otherwise), and the
views turn them into a 4xx with the message shown in the page: never a 500.
"""


class LogLabError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(LogLabError):
    status = 400
    code = "invalid"


class NotFound(LogLabError):
    status = 404
    code = "not_found"


class Conflict(LogLabError):
    status = 409
    code = "conflict"
