"""What the retention engine raises when it refuses or fails: PostgreSQL and the lake are as they were."""


class RetentionError(RuntimeError):
    """Archiving or restoring was refused or failed; PostgreSQL and the lake are as they were."""


class NotOverdue(RetentionError):
    """The day still has rows younger than the entry's keep_days."""


class LockTimeout(RetentionError):
    """A lock was not granted within the lock timeout: nothing changed, a later run retries."""
