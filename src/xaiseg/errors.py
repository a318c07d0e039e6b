"""Errors that name the input at fault; the CLI prints them without a traceback."""


class XaisegError(Exception):
    """A problem with the user's input or configuration, worded for the user."""


class InputError(XaisegError):
    """A file or sample-sheet row that cannot be used, with where and why."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem

    def __reduce__(self):  # raised in a worker process, re-raised in the parent
        return (type(self), (self.where, self.problem))
