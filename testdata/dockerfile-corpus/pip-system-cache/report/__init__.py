"""A daily report, printed."""

TITLE = "daily report"
