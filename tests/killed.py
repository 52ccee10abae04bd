"""What the tests of killed runs raise."""


class Killed(BaseException):
    """Stands in for a kill: no `except Exception` can swallow it."""
