"""One error base class; each error builds its own one-line message and knows its exit code.

Exit codes follow the README's "Commands": 1 a job or a call failed, 2 usage or configuration,
75 (EX_TEMPFAIL) another run of the same job is in progress.
"""

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 75


class RunnerError(Exception):
    """Base of every error the runner reports to a person: one line, one exit code."""

    exit_code = EXIT_FAILED

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        return super().__str__()


def one_line(exc: BaseException) -> str:
    """An exception as one line for a log: its message's first line (a RunnerError's own), else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ConfigError(RunnerError):
    """A missing or malformed setting; names the variable and what it should hold."""

    exit_code = EXIT_USAGE

    def __init__(self, variable: str, problem: str):
        super().__init__(variable, problem)
        self.variable = variable
        self.problem = problem

    def message(self) -> str:
        return f"{self.variable}: {self.problem}"


class UsageError(RunnerError):
    """Bad input on the command line (unknown job, malformed --param)."""

    exit_code = EXIT_USAGE


class TokenError(RunnerError):
    """A token could not be obtained: rejected credentials, bad response, tenant unreachable."""


class CredentialsRejected(TokenError):
    """Auth0 refused the token request (400, 401, 403): a setting is wrong, no retry will mend it."""


class RefusedAtStart(RunnerError):
    """`serve` found at start that a setting does not work (Auth0 refused the credentials): exit 2, as a bad setting."""

    exit_code = EXIT_USAGE


class ApiError(RunnerError):
    """The Management API refused or failed a call after the retries allowed."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status of a refusal, for callers that treat one specially
        self.code = code  # Auth0's errorCode, e.g. invalid_paging


class JobBusy(RunnerError):
    """Another run of the same job is in progress somewhere that shares the database."""

    exit_code = EXIT_BUSY


class JobFailed(RunnerError):
    """A job that ends failed with a result worth recording (the log archive's gap, say)."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result
