"""What the engine refuses, in its own words; the services say it in 8x8's (`ApiError`)."""

from __future__ import annotations


class StartsRateLimited(Exception):
    """The account started more instances than its rate allows; retry after `retry_after_s`."""

    def __init__(self, account_id: str, retry_after_s: int) -> None:
        super().__init__(
            f"Too many workflow starts for account '{account_id}'; retry in {retry_after_s} s."
        )
        self.account_id = account_id
        self.retry_after_s = retry_after_s
